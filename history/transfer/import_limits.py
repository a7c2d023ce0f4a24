"""How much one import may bring in: passed from chatbot/settings, since history/ cannot import it.

Every limit is checked while the file is read, so a hostile upload costs seconds, not minutes, and
each refusal names its limit, the value and the setting that changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CONVERSATIONS_SETTING = "CHATBOT_IMPORT_MAX_CONVERSATIONS"
MAX_MESSAGES_SETTING = "CHATBOT_IMPORT_MAX_MESSAGES"
MAX_MESSAGE_CHARS_SETTING = "CHATBOT_IMPORT_MAX_MESSAGE_CHARS"
MAX_UNPACKED_SETTING = "CHATBOT_IMPORT_MAX_UNPACKED_MB"


@dataclass(frozen=True)
class ImportLimits:
    """The defaults fit a real ChatGPT export imported in a few goes; the settings README lists them."""

    max_conversations: int = 1000  # per import; importing the file again brings the next ones
    max_messages: int = 2000  # per conversation
    max_message_chars: int = 100_000  # per message, earlier versions included
    max_unpacked_mb: float = 50  # what a zip may unpack to, in all

    @property
    def max_unpacked_bytes(self) -> int:
        return int(self.max_unpacked_mb * 2**20)

    def conversations_reached(self) -> tuple[str, int, str]:
        """What the report says when the conversation limit stopped an import."""
        return ("conversations", self.max_conversations, MAX_CONVERSATIONS_SETTING)

    def too_many_messages(self, count: int | None) -> str | None:
        """Why a conversation of `count` messages is skipped (None: more than the limit, not all read)."""
        if count is not None and count <= self.max_messages:
            return None
        counted = f"{count:,}" if count is not None else f"more than {self.max_messages:,}"
        return (
            f"has {counted} messages; one conversation may bring at most {self.max_messages:,} "
            f"({MAX_MESSAGES_SETTING})"
        )

    def too_long(self, longest: int) -> str | None:
        """Why a conversation whose longest message has `longest` characters is skipped, if it is."""
        if longest <= self.max_message_chars:
            return None
        return (
            f"has a message of {longest:,} characters; an imported message may have at most "
            f"{self.max_message_chars:,} ({MAX_MESSAGE_CHARS_SETTING})"
        )

    def unpacked_too_much(self, size: int) -> str | None:
        """Why a zip that unpacks to `size` bytes is refused, if it is."""
        if size <= self.max_unpacked_bytes:
            return None
        limit = mb(self.max_unpacked_bytes)
        return f"unzips to {mb(size)} MB; the limit is {limit} MB ({MAX_UNPACKED_SETTING})"


def mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")
