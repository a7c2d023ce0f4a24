"""The conversation record and its JSON schema (see docs/history-format.md)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, the format every time in the schema uses."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A sortable, unguessable conversation id: creation time, then random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)


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


def clean_title(title: str) -> str:
    """A title the user typed, on one line and not too long; ValueError when it is empty."""
    line = " ".join(str(title).split())
    if not line:
        raise ValueError("A title cannot be empty.")
    return line[:MAX_TITLE_LENGTH].rstrip()


def make_message(role: str, content: str, **extra: object) -> dict:
    """A message dict as stored: role, content, created_at, then any extra keys."""
    return {"role": role, "content": content, "created_at": utc_now(), **extra}


@dataclass
class Conversation:
    """One conversation. Unknown keys in a file are kept in `extra` and written back."""

    id: str = field(default_factory=new_id)
    title: str = DEFAULT_TITLE
    created_at: str = field(default_factory=utc_now)
    updated_at: str = ""
    model: str = ""
    messages: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    titled_by_user: bool = False

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def add(self, message: dict) -> None:
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
        extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS and k != "titled_by_user"}
        return cls(
            id=data["id"],
            title=data.get("title") or DEFAULT_TITLE,
            created_at=data.get("created_at") or utc_now(),
            updated_at=data.get("updated_at") or "",
            model=data.get("model") or "",
            messages=messages,
            extra=extra,
            titled_by_user=bool(data.get("titled_by_user")),
        )


def check_message(message: object, index: int) -> None:
    """Raise InvalidConversation unless this is a message dict with a known role and text."""
    if not isinstance(message, dict):
        raise InvalidConversation(f"message {index + 1} is not an object")
    if message.get("role") not in ROLES:
        raise InvalidConversation(f"message {index + 1} has role {message.get('role')!r}")
    if not isinstance(message.get("content"), str):
        raise InvalidConversation(f"message {index + 1} has no text 'content'")


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
