"""Settings, read in this order: explicit argument, then st.secrets, then the environment, then a default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# A server at OPENAI_BASE_URL may need no key, but the OpenAI client refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"
BACKENDS = ("auto", "openai", "local")


class SettingsError(ValueError):
    """A setting with a value the app cannot use; the message names the setting and the fix."""


@dataclass(frozen=True)
class Settings:
    """Everything the app can be configured with; see the README's settings table."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    model: str | None = None
    history_dir: Path = Path("data/history")
    backend: str = "auto"
    timeout: float = 60.0
    max_retries: int = 2
    max_message_chars: int = 20_000
    system_prompt: str | None = None
    local_model_path: str | None = None
    require_login: bool = False
    profile_path: str | None = None

    @property
    def uses_openai(self) -> bool:
        """auto picks the OpenAI-compatible server when a key or a base URL is set."""
        if self.backend == "auto":
            return bool(self.openai_api_key or self.openai_base_url)
        return self.backend == "openai"

    def system_prompt_for(self, backend: str, persona: str | None = None) -> str | None:
        """CHATBOT_SYSTEM_PROMPT if set; else the persona of a profile set with CHATBOT_PROFILE; else the
        default, which is none for the local model, whose template has its own."""
        if self.system_prompt is not None:
            return self.system_prompt
        if self.profile_path and persona:
            return persona
        return None if backend == "local" else DEFAULT_SYSTEM_PROMPT

    @property
    def api_key_or_placeholder(self) -> str | None:
        if self.openai_api_key:
            return self.openai_api_key
        return PLACEHOLDER_API_KEY if self.openai_base_url else None


# setting name -> (field, converter)
_FIELDS = {
    "OPENAI_API_KEY": ("openai_api_key", str),
    "OPENAI_BASE_URL": ("openai_base_url", str),
    "CHATBOT_MODEL": ("model", str),
    "CHATBOT_HISTORY_DIR": ("history_dir", Path),
    "CHATBOT_BACKEND": ("backend", str),
    "CHATBOT_TIMEOUT": ("timeout", float),
    "CHATBOT_MAX_RETRIES": ("max_retries", int),
    "CHATBOT_MAX_MESSAGE_CHARS": ("max_message_chars", int),
    "CHATBOT_SYSTEM_PROMPT": ("system_prompt", str),
    "CHATBOT_LOCAL_MODEL_PATH": ("local_model_path", str),
    "CHATBOT_REQUIRE_LOGIN": ("require_login", "bool"),
    "CHATBOT_PROFILE": ("profile_path", str),
}
SETTING_NAMES = tuple(_FIELDS)


def _to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}.")


def _convert(name: str, value: object) -> object:
    _attribute, kind = _FIELDS[name]
    if kind == "bool":
        return _to_bool(name, value)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a {kind.__name__}, not {value!r}.") from None


def load_settings(
    overrides: Mapping[str, object] | None = None,
    secrets: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources by precedence; empty strings count as unset."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (attribute, _) in _FIELDS.items():
        for source in (overrides or {}, secrets or {}, environ):
            value = source.get(name)
            if value is not None and value != "":
                values[attribute] = _convert(name, value)
                break
    settings = Settings(**values)
    if settings.backend not in BACKENDS:
        raise SettingsError(
            f"CHATBOT_BACKEND must be one of {', '.join(BACKENDS)}, not {settings.backend!r}."
        )
    if settings.timeout <= 0 or settings.max_retries < 0 or settings.max_message_chars < 1:
        raise SettingsError(
            "CHATBOT_TIMEOUT, CHATBOT_MAX_RETRIES and CHATBOT_MAX_MESSAGE_CHARS must be positive."
        )
    return settings
