"""The history store interface every store implements: the JSON folder (history/stores/json_store.py),
a SQL database (history/stores/sql_store.py) and memory (history/stores/memory_store.py).

The write methods share one set of rules (history/stores/changes.py): each store only says how it
reads and saves one conversation under its lock (`_change`). Listing pages, search and the Insights
rows are answered by each store's own engine: the folder's derived index (history/index.py) or the
database, never by reading every conversation into Python.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from history.errors import ConversationChanged, ConversationNotFound, HistoryError, InvalidConversation
from history.insight_queries import Insights
from history.models import Conversation, ConversationSummary
from history.search import SearchHit
from history.stores.changes import Change, appending, prepared, replacing_tail, updating, updating_message

__all__ = ["ConversationChanged", "ConversationNotFound", "Days", "HistoryStore", "UnreadableFile"]

log = logging.getLogger(__name__)
Days = tuple[date | None, date | None]  # first and last UTC day last updated, both included; None: open
ANY_DAY: Days = (None, None)


@dataclass(frozen=True)
class UnreadableFile:
    """A stored file that could not be read: listed for the user, never overwritten."""

    name: str
    reason: str
    advice: str = "fix or move the file and reload"  # a database store names its rows instead

    @property
    def message(self) -> str:
        return f"Could not read '{self.name}': {self.reason}. It was left untouched; {self.advice}."


class HistoryStore(ABC):
    """Saved conversations. Every method is safe to call from many threads and processes, waits a few
    seconds at most, and fails only with history/errors.py's exceptions (HistoryError)."""

    # Reading

    @abstractmethod
    def get(self, conversation_id: str) -> Conversation:
        """The whole conversation; raises ConversationNotFound or InvalidConversation."""

    def get_many(self, conversation_ids: Iterable[str]) -> dict[str, Conversation]:
        """The readable ones of these live conversations, by id (a database reads them in bulk)."""
        found = {}
        for conversation_id in dict.fromkeys(conversation_ids):
            try:
                found[conversation_id] = self.get(conversation_id)
            except (ConversationNotFound, InvalidConversation):
                continue
        return found

    @abstractmethod
    def exists(self, conversation_id: str) -> bool:
        """Whether the id is taken, so a caller knows to append rather than create."""

    @abstractmethod
    def page(
        self, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[ConversationSummary]:
        """Readable conversations newest first (ties: larger id first), `limit` of them after the first
        `offset`, last updated within `days`."""

    def list(self) -> list[ConversationSummary]:
        """Every readable conversation, newest first."""
        return self.page()

    def latest(self) -> ConversationSummary | None:
        """The most recently updated readable conversation, if any."""
        first = self.page(1)
        return first[0] if first else None

    @abstractmethod
    def count(self) -> int:
        """How many conversations list() returns."""

    @abstractmethod
    def unreadable(self) -> list[UnreadableFile]:
        """Stored conversations that could not be read, by name."""

    @abstractmethod
    def search(
        self, query: str, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[SearchHit]:
        """Conversations holding every term of the query (history/search.py), most relevant first, then
        newest; a blank query lists them newest first."""

    @abstractmethod
    def insight_rows(self) -> pd.DataFrame:
        """history.insights.messages_frame of every readable conversation, from the store's own rows (for
        the CSV download: it reads every row)."""

    @abstractmethod
    def insights(self, start: date | None = None, end: date | None = None) -> Insights:
        """The Insights page's figures for messages from the start through the end UTC day (None: open),
        aggregated by the store's engine, so a page never reads every message (history/insight_queries.py)."""

    @abstractmethod
    def imported_sources(self) -> set[str]:
        """The 'app:id' of every conversation that came from an import, to skip re-imports."""

    def prepare(self) -> None:
        """Bring whatever the queries read up to date now (a server starting), not on the first page."""
        return  # a store whose queries need nothing built has nothing to do

    def progress(self) -> tuple[int, int] | None:
        """(done, to do) while prepare() or a query builds what it reads, for a page to show; else None."""
        return None

    # Writing

    @abstractmethod
    def create(self, conversation: Conversation) -> Conversation:
        """Save a new conversation; ConversationExists if the id is taken."""

    @abstractmethod
    def _change(self, conversation_id: str, change: Change) -> Conversation:
        """Read what is saved under the conversation's lock, apply `change`, save it in one atomic write."""

    def append(self, conversation_id: str, *messages: dict, model: str | None = None) -> Conversation:
        """Add messages at the end in one atomic write, on top of whatever is saved now."""
        return self._change(conversation_id, appending(prepared(messages), model))

    def update(self, conversation_id: str, **fields: object) -> Conversation:
        """Change top-level fields (title, model, settings) in one atomic write."""
        return self._change(conversation_id, updating(fields))

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
        change = replacing_tail(conversation_id, start, prepared(messages), expected_count, expected_last)
        return self._change(conversation_id, change)

    def update_message(
        self, conversation_id: str, index: int, created_at: str, /, **fields: object
    ) -> Conversation:
        """Set (or, with None, remove) extra fields of one message, such as feedback; the
        message is found by index and must still have that `created_at`."""
        return self._change(conversation_id, updating_message(conversation_id, index, created_at, fields))

    # The trash

    @abstractmethod
    def delete(self, conversation_id: str) -> None:
        """Remove a conversation so that restore() can bring it back."""

    @abstractmethod
    def deleted(self) -> list[ConversationSummary]:
        """Deleted conversations that restore() can bring back, most recently deleted first."""

    @abstractmethod
    def get_deleted(self, conversation_id: str) -> Conversation:
        """A deleted conversation, whole, as restore() would bring it back (to copy the trash)."""

    @abstractmethod
    def restore(self, conversation_id: str) -> None:
        """Undo delete(); fails if the id was taken again meanwhile."""

    @abstractmethod
    def purge_deleted(self, deleted_before: datetime) -> int:
        """Remove for good what was deleted before that moment (the trash's age limit); how many."""

    @abstractmethod
    def delete_forever(self, conversation_id: str) -> None:
        """Remove one deleted conversation for good; ConversationNotFound unless it is in the trash."""


def prepare_in_background(store: HistoryStore) -> threading.Thread:
    """store.prepare() in a thread the server owns; a failure is logged, the pages then say it on use."""

    def run() -> None:
        try:
            store.prepare()
        except HistoryError as error:
            log.warning("Could not prepare the history in advance: %s", error.message)
        except Exception:  # a background thread has no one to report to but the log
            log.exception("Could not prepare the history in advance")

    thread = threading.Thread(target=run, name="history-prepare", daemon=True)
    thread.start()
    return thread

