"""The history store interface: the JSON folder (history/stores/json_store.py) and SQLAlchemy
(history/stores/sql_store.py) implement it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from history.errors import ConversationChanged, ConversationNotFound, InvalidConversation
from history.models import Conversation, ConversationSummary

__all__ = ["ConversationChanged", "ConversationNotFound", "HistoryStore", "UnreadableFile"]

_BATCH = 500


@dataclass(frozen=True)
class UnreadableFile:
    """A stored file that could not be read: listed for the user, never overwritten."""

    name: str
    reason: str
    advice: str = "fix or move the file and reload"  # a database store names its rows instead

    @property
    def message(self) -> str:
        return f"Could not read '{self.name}': {self.reason}. It was left untouched; {self.advice}."


class HistoryStore(Protocol):
    """Saved conversations. Every method is safe to call from many threads and processes, waits a few
    seconds at most, and fails only with history/errors.py's exceptions (HistoryError)."""

    def create(self, conversation: Conversation) -> Conversation:
        """Save a new conversation; fails if the id exists."""

    def get(self, conversation_id: str) -> Conversation:
        """The whole conversation; raises ConversationNotFound or InvalidConversation."""

    def append(self, conversation_id: str, *messages: dict, model: str | None = None) -> Conversation:
        """Add messages at the end in one atomic write, on top of whatever is saved now."""

    def update(self, conversation_id: str, **fields: object) -> Conversation:
        """Change top-level fields (title, model, settings) in one atomic write."""

    def replace_tail(
        self,
        conversation_id: str,
        start: int,
        *messages: dict,
        expected_count: int,
        expected_last: str | None = None,
    ) -> Conversation:
        """Swap messages[start:] for `messages` (regenerate, edit); ConversationChanged unless the
        saved conversation still has `expected_count` messages, the last created at `expected_last`."""

    def update_message(
        self, conversation_id: str, index: int, created_at: str, /, **fields: object
    ) -> Conversation:
        """Set (or, with None, remove) extra fields of one message, such as feedback; the
        message is found by index and must still have that `created_at`."""

    def list(self) -> list[ConversationSummary]:
        """Every readable conversation, newest first, without parsing unchanged files again."""

    def unreadable(self) -> list[UnreadableFile]:
        """Files found by the last listing that could not be read."""

    def exists(self, conversation_id: str) -> bool:
        """Whether the id is taken, so a caller knows to append rather than create."""

    def latest(self) -> ConversationSummary | None:
        """The most recently updated readable conversation, if any."""

    def count(self) -> int:
        """How many conversations list() returns."""

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation so that restore() can bring it back."""

    def deleted(self) -> list[ConversationSummary]:
        """Deleted conversations that restore() can bring back, most recently deleted first."""

    def get_deleted(self, conversation_id: str) -> Conversation:
        """A deleted conversation, whole, as restore() would bring it back (to copy the trash)."""

    def restore(self, conversation_id: str) -> None:
        """Undo delete(); fails if the id was taken again meanwhile."""

    def purge_deleted(self, deleted_before: datetime) -> int:
        """Remove for good what was deleted before that moment (the trash's age limit); how many."""

    def delete_forever(self, conversation_id: str) -> None:
        """Remove one deleted conversation for good; ConversationNotFound unless it is in the trash."""


def keeps_revisions(store: HistoryStore) -> bool:
    """Whether the store numbers each change (a database), so caches can re-read only what changed."""
    return hasattr(store, "revisions") and hasattr(store, "cache_key")


def readable_conversations(
    store: HistoryStore, summaries: list[ConversationSummary]
) -> Iterator[tuple[ConversationSummary, Conversation]]:
    """Each listed conversation that can still be read, in the listing's order; in bulk where the
    store can (a database: two queries per 500), else one get() each."""
    get_many = getattr(store, "get_many", None)
    if get_many is not None:
        for start in range(0, len(summaries), _BATCH):
            batch = summaries[start : start + _BATCH]
            found = get_many([summary.id for summary in batch])
            yield from ((summary, found[summary.id]) for summary in batch if summary.id in found)
        return
    for summary in summaries:
        try:
            yield summary, store.get(summary.id)
        except (ConversationNotFound, InvalidConversation):
            continue
