"""Start llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, for benchmarks and tests.

Needs the server extras (bench/requirements.txt). Usage:

    with run_llama_server(model_path) as base_url:   # e.g. "http://127.0.0.1:40123/v1"
        OpenAI(base_url=base_url, api_key="unused").chat.completions.create(...)
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STARTUP_TIMEOUT = 60.0  # seconds; loading the bundled model takes well under one


def free_port() -> int:
    """A port nothing listens on now (the OS picks it), for a server started right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def run_llama_server(
    model_path: str | Path,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    port: int | None = None,
    model_alias: str | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[str]:
    """Run `python -m llama_cpp.server` until the block ends; yields its /v1 base URL."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--n_ctx", str(n_ctx),
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    if n_threads:
        command += ["--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
    if model_alias:
        command += ["--model_alias", model_alias]
    base_url = f"http://127.0.0.1:{port}/v1"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(server, base_url, startup_timeout, log)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def served_models(base_url: str) -> list[str]:
    """The model ids the server lists: what to pass as `model` in requests."""
    with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
        return [model["id"] for model in json.load(response)["data"]]


def _wait_until_ready(server: subprocess.Popen, base_url: str, timeout: float, log) -> None:
    """Poll /v1/models until it answers; fail with the server's output if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited ({server.returncode}):\n{_tail(log)}")
        try:
            served_models(base_url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server did not start in {timeout:.0f} s:\n{_tail(log)}")


def _tail(log, size: int = 4000) -> str:
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-size:]
