"""Settings, read in this order: explicit argument, then st.secrets, then the environment, then a default."""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from history.transfer.import_limits import ImportLimits

DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# A server at OPENAI_BASE_URL may need no key, but the OpenAI client refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"
BACKENDS = ("auto", "openai", "local")
DEFAULT_MAX_REPLY_TOKENS = 4096  # a long answer fits; a runaway one stops costing


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
    trash_days: float = 30.0  # deleted conversations are removed for good after this; 0 keeps them
    import_max_conversations: int = ImportLimits.max_conversations
    import_max_messages: int = ImportLimits.max_messages
    import_max_message_chars: int = ImportLimits.max_message_chars
    import_max_unpacked_mb: float = ImportLimits.max_unpacked_mb
    allowed_models: tuple[str, ...] = ()
    max_reply_tokens: int = DEFAULT_MAX_REPLY_TOKENS
    lock_system_prompt: bool = False

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

    def import_limits(self) -> ImportLimits:
        """What one import may bring in, for history/transfer/importers.py."""
        return ImportLimits(
            self.import_max_conversations, self.import_max_messages,
            self.import_max_message_chars, self.import_max_unpacked_mb,
        )

    def allows_model(self, model: str) -> bool:
        """Any model when CHATBOT_ALLOWED_MODELS is empty, else only those it names."""
        return not self.allowed_models or model in self.allowed_models

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
    "CHATBOT_TRASH_DAYS": ("trash_days", float),
    "CHATBOT_IMPORT_MAX_CONVERSATIONS": ("import_max_conversations", int),
    "CHATBOT_IMPORT_MAX_MESSAGES": ("import_max_messages", int),
    "CHATBOT_IMPORT_MAX_MESSAGE_CHARS": ("import_max_message_chars", int),
    "CHATBOT_IMPORT_MAX_UNPACKED_MB": ("import_max_unpacked_mb", float),
    "CHATBOT_ALLOWED_MODELS": ("allowed_models", "list"),
    "CHATBOT_MAX_REPLY_TOKENS": ("max_reply_tokens", int),
    "CHATBOT_LOCK_SYSTEM_PROMPT": ("lock_system_prompt", "bool"),
}
SETTING_NAMES = tuple(_FIELDS)


def _url_parts(url: str) -> tuple[str, str, str, str, str]:
    """Scheme with "://", user info, host and port, path, and query with fragment. Never refused (as
    urllib refuses some hosts), since a server's error text can hold any URL."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        scheme, rest = "", scheme
    mark = re.search(r"[?#]", rest)
    rest, after = (rest[: mark.start()], rest[mark.start() :]) if mark else (rest, "")
    authority, slash, path = rest.partition("/") if separator else ("", "", rest)
    userinfo, _, host = authority.rpartition("@")
    return scheme.lower() + separator, userinfo, host, slash + path, after


def shown_url(url: str | None) -> str | None:
    """Scheme, host, port and path only: a user name, password, query (`?api-key=`) or fragment in
    a URL is a credential more often than not, and never helps anyone find the server."""
    if url is None:
        return None
    scheme, _userinfo, host, path, _after = _url_parts(url)
    return scheme + host + path.split(";", 1)[0]


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The parts of a URL that shown_url leaves out, to redact them wherever a server quotes them."""
    if not url:
        return ()
    _scheme, userinfo, _host, _path, after = _url_parts(url)
    query, _, fragment = after[1:].partition("#") if after.startswith("?") else ("", "", after[1:])
    values = [pair.partition("=")[2] for pair in query.split("&")]
    found = [userinfo, userinfo.partition(":")[2], query, fragment, *values]
    found += [urllib.parse.unquote(part) for part in found]
    return tuple(sorted({part for part in found if len(part) >= 3}, key=len, reverse=True))


def _to_list(value: object) -> tuple[str, ...]:
    """A comma-separated text, or a list in the secrets, as the names it holds."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(dict.fromkeys(name for name in (str(item).strip() for item in items) if name))


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
    if kind == "list":
        return _to_list(value)
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
    if not (math.isfinite(settings.trash_days) and settings.trash_days >= 0):
        raise SettingsError(
            "CHATBOT_TRASH_DAYS must be a number of days (0 keeps deleted conversations until they are "
            f"deleted forever), not {settings.trash_days!r}."
        )
    limits = settings.import_limits()
    counts = (limits.max_conversations, limits.max_messages, limits.max_message_chars, limits.max_unpacked_mb)
    if min(counts) <= 0:
        raise SettingsError(
            "CHATBOT_IMPORT_MAX_CONVERSATIONS, CHATBOT_IMPORT_MAX_MESSAGES, CHATBOT_IMPORT_MAX_MESSAGE_CHARS "
            "and CHATBOT_IMPORT_MAX_UNPACKED_MB must be positive."
        )
    if settings.max_reply_tokens < 1:
        raise SettingsError(
            f"CHATBOT_MAX_REPLY_TOKENS must be a positive number of tokens, not {settings.max_reply_tokens}."
        )
    if settings.model and not settings.allows_model(settings.model):
        raise SettingsError(
            f"CHATBOT_MODEL is {settings.model!r}, which CHATBOT_ALLOWED_MODELS does not list "
            f"({', '.join(settings.allowed_models)}): add it there, or pick one of those."
        )
    return settings
