"""The conversation record and its JSON schema (see docs/history-format.md)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from history.errors import InvalidConversation

SCHEMA_VERSION = 1
TITLE_LENGTH = 60
MAX_TITLE_LENGTH = 200
DEFAULT_TITLE = "New conversation"
ROLES = ("system", "user", "assistant")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
# Device names Windows refuses as file names, whatever the extension or case.
_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(10)]
)
_KNOWN_KEYS = ("schema_version", "id", "title", "created_at", "updated_at", "model", "messages")
_LINE_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # where str.splitlines() splits
# Optional message keys the app reads, each text when present (None is the same as absent).
_TEXT_KEYS = ("model", "finish_reason", "status", "source", "error", "error_detail", "checkpoint_at", "name")
_NUMBER_KEYS = ("latency_ms", "first_token_ms")
_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_VERSION_KEYS = ("alternatives", "replies")  # earlier versions of a message, and the replies an edit kept
_MAX_VERSION_DEPTH = 6  # the app nests them three deep (a version's reply's versions)
FEEDBACK = ("up", "down")


def stamp_of(moment: datetime) -> str:
    """A UTC moment as ISO-8601 with milliseconds, the format every time in the schema uses."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """Now, as the schema writes it."""
    return stamp_of(datetime.now(UTC))


def moment_of(stamp: object) -> datetime | None:
    """A saved time as an aware datetime (UTC unless it names a zone); copes with hand-edited times in
    other ISO forms; None for one that does not parse."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def order_of(updated_at: str) -> float:
    """Epoch seconds to sort by (0 for a time that does not parse)."""
    moment = moment_of(updated_at)
    return moment.timestamp() if moment else 0.0


def source_key(source: object) -> str | None:
    """'app:id' of an imported conversation's extra['source'] ({"app", "id"}, or "sha256" without an id),
    so the same conversation is not imported twice; None for one that was not imported."""
    if not isinstance(source, dict) or not isinstance(source.get("app"), str):
        return None
    ident = source.get("id") if source.get("id") is not None else source.get("sha256")
    return f"{source['app']}:{ident}" if isinstance(ident, str | int) else None


def new_id(created: datetime | None = None) -> str:
    """A sortable, unguessable conversation id: creation time (now unless given), then random hex."""
    return (created or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)


def is_valid_id(conversation_id: object) -> bool:
    """Ids become file names: only letters, digits, '-' and '_', and no Windows device names."""
    return (
        isinstance(conversation_id, str)
        and bool(_ID_PATTERN.fullmatch(conversation_id))
        and conversation_id.upper() not in _RESERVED_NAMES
    )


def title_from(text: str) -> str:
    """A title from the first user message: its first line, cut at a word near 60 characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_LENGTH:
        return line or DEFAULT_TITLE
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut.rstrip(" ,.;:") + "…"


def shown_title(title: str) -> str:
    """A saved title as every page shows it: one line, at most MAX_TITLE_LENGTH characters.

    Files written before titles had a limit (or by hand) may hold megabytes; this is applied on read
    and never rewrites the file. A title that already fits is returned exactly as saved.
    """
    if len(title) <= MAX_TITLE_LENGTH and not _LINE_BREAK.search(title):
        return title
    if _LINE_BREAK.search(title, 0, MAX_TITLE_LENGTH * 4):
        title = " ".join(title[: MAX_TITLE_LENGTH * 4].split())
    return title[:MAX_TITLE_LENGTH].rstrip() or DEFAULT_TITLE


def shown_value(value: object) -> str:
    """A value quoted in an error message, cut short: a hostile file must not make the message huge."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def clean_title(title: str) -> str:
    """A title the user typed, on one line and not too long; ValueError when it is empty."""
    line = " ".join(str(title).split())
    if not line:
        raise ValueError("A title cannot be empty.")
    return line[:MAX_TITLE_LENGTH].rstrip()


class Message(TypedDict, total=False):
    """One message as stored: a JSON object, so any other key is kept too (docs/history-format.md)."""

    role: str  # system, user or assistant
    content: str
    created_at: str  # ISO-8601 UTC
    model: str  # assistant: the model that answered
    source: str  # assistant: scripted or fallback when not the model
    status: str  # assistant: stopped or interrupted, for a partial reply
    latency_ms: int
    first_token_ms: int
    usage: dict  # prompt_tokens, completion_tokens, total_tokens
    feedback: str  # up or down
    alternatives: list  # earlier versions of this message and what followed them


def make_message(role: str, content: str, **extra: object) -> Message:
    """A message as stored: role, content, created_at, then any extra keys."""
    return {"role": role, "content": content, "created_at": utc_now(), **extra}


@dataclass
class Conversation:
    """One conversation. Unknown keys in a file are kept in `extra` and written back."""

    id: str = field(default_factory=new_id)
    title: str = DEFAULT_TITLE
    created_at: str = field(default_factory=utc_now)
    updated_at: str = ""
    model: str = ""
    messages: list[Message] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    titled_by_user: bool = False

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def add(self, message: Message) -> None:
        """Append a message; the first user message names an untitled conversation."""
        self.messages.append(message)
        self.updated_at = message.get("created_at") or utc_now()
        if message["role"] == "user" and not self.titled_by_user and self.title == DEFAULT_TITLE:
            self.title = title_from(message["content"])

    def summary(self, read_only: bool = False) -> ConversationSummary:
        """The listing row for this conversation, so stores build it one way."""
        return ConversationSummary(
            id=self.id,
            title=self.title,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=len(self.messages),
            model=self.model,
            read_only=read_only,
        )

    def to_dict(self) -> dict:
        data = {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model": self.model,
        }
        data.update(self.extra)
        if self.titled_by_user:
            data["titled_by_user"] = True
        data["messages"] = self.messages
        return data

    @classmethod
    def from_dict(cls, data: object) -> Conversation:
        """Validate a decoded file; raise InvalidConversation saying what is wrong."""
        if not isinstance(data, dict):
            raise InvalidConversation("expected a JSON object with a 'messages' list")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise InvalidConversation(
                f"schema_version {version!r} is newer than this app understands "
                f"({SCHEMA_VERSION}); upgrade the app to open it"
            )
        if not is_valid_id(data.get("id")):
            raise InvalidConversation("'id' is missing or has characters other than A-Z a-z 0-9 - _")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise InvalidConversation("'messages' must be a list")
        for index, message in enumerate(messages):
            check_message(message, index)
        for key in ("title", "created_at", "updated_at", "model"):
            if not isinstance(data.get(key, ""), str):
                raise InvalidConversation(f"'{key}' must be a string")
        if not isinstance(data.get("settings", {}), dict):
            raise InvalidConversation("'settings' must be an object")
        extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS and k != "titled_by_user"}
        return cls(
            id=data["id"],
            title=shown_title(data.get("title") or DEFAULT_TITLE),
            created_at=data.get("created_at") or utc_now(),
            updated_at=data.get("updated_at") or "",
            model=data.get("model") or "",
            messages=messages,
            extra=extra,
            titled_by_user=bool(data.get("titled_by_user")),
        )


def check_message(message: object, index: int, *, needs_time: bool = True) -> None:
    """Raise InvalidConversation unless this is a message dict whose every key the app reads has the
    right type: a known role, text, a created_at time (unless `needs_time` is off, for the Flask list,
    which has none), and the optional keys (feedback, status, usage, earlier versions...)."""
    _check(message, f"message {index + 1}", needs_time, 0)


def _check(message: object, where: str, needs_time: bool, depth: int) -> None:
    if not isinstance(message, dict):
        raise InvalidConversation(f"{where} is not an object")
    if message.get("role") not in ROLES:
        raise InvalidConversation(f"{where} has role {shown_value(message.get('role'))}")
    if not isinstance(message.get("content"), str):
        raise InvalidConversation(f"{where} has no text 'content'")
    if (needs_time or "created_at" in message) and not isinstance(message.get("created_at"), str):
        raise InvalidConversation(f"{where} has no 'created_at' time")
    for key in _TEXT_KEYS:
        if not isinstance(message.get(key), str | None):
            raise InvalidConversation(f"{where} has '{key}' that is not text")
    if message.get("feedback") not in (*FEEDBACK, None):
        raise InvalidConversation(f"{where} has 'feedback' that is neither \"up\" nor \"down\"")
    for key in _NUMBER_KEYS:
        value = message.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise InvalidConversation(f"{where} has '{key}' that is not a number")
    usage = message.get("usage")
    counts = isinstance(usage, dict) and all(_is_count(usage.get(key)) for key in _TOKEN_KEYS)
    if usage is not None and not counts:
        raise InvalidConversation(f"{where} has 'usage' that is not an object of token counts")
    _check_versions(message, where, needs_time, depth)


def _is_count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _check_versions(message: dict, where: str, needs_time: bool, depth: int) -> None:
    """Earlier versions and kept replies are messages too, checked the same way."""
    for key in _VERSION_KEYS:
        versions = message.get(key)
        if versions is None:
            continue
        if not isinstance(versions, list):
            raise InvalidConversation(f"{where} has '{key}' that is not a list")
        if versions and depth >= _MAX_VERSION_DEPTH:
            raise InvalidConversation(f"{where} nests earlier versions too deeply")
        label = "version" if key == "alternatives" else "reply"
        for number, version in enumerate(versions, 1):
            _check(version, f"{where}'s {label} {number}", needs_time, depth + 1)


@dataclass(frozen=True)
class ConversationSummary:
    """What the history table shows of a conversation, without its messages."""

    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int
    model: str
    read_only: bool = False

    def __post_init__(self) -> None:
        # Listings come from files, index caches and database rows alike: none may show a giant title.
        object.__setattr__(self, "title", shown_title(self.title))
