"""Conversations in this process's memory: the store tests and demos use when nothing may touch a disk.

It keeps every rule of the other stores (the shared change rules, the JSON limits, the trash) and
answers listing, search and Insights from the same derived index the JSON folder uses
(history/index.py), in an in-memory SQLite database, so it joins the store contract suite.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

import pandas as pd

from history import index
from history.errors import ConversationExists
from history.index import Entry, Scope
from history.insight_queries import Insights
from history.models import Conversation, ConversationSummary, check_message, is_valid_id
from history.search import SearchHit
from history.stores.base import ANY_DAY, ConversationNotFound, Days, HistoryStore, UnreadableFile
from history.stores.changes import Change
from history.stores.json_store import encode

T = TypeVar("T")
_NO_KEY = (0, 0, 0)


class MemoryHistoryStore(HistoryStore):
    """HistoryStore on dictionaries and an in-memory index, under one lock; gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._live: dict[str, bytes] = {}  # each conversation as the JSON folder's file would hold it
        self._trash: dict[str, tuple[datetime, bytes]] = {}
        self._index = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        index.create(self._index)

    def get(self, conversation_id: str) -> Conversation:
        with self._lock:
            if not is_valid_id(conversation_id) or conversation_id not in self._live:
                raise ConversationNotFound(conversation_id)
            return _decoded(self._live[conversation_id])

    def exists(self, conversation_id: str) -> bool:
        with self._lock:
            return is_valid_id(conversation_id) and conversation_id in self._live

    def page(
        self, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[ConversationSummary]:
        return self._query(lambda db: index.page(db, Scope(days=days), limit, offset))

    def count(self) -> int:
        return self._query(lambda db: index.count(db, Scope()))

    def unreadable(self) -> list[UnreadableFile]:
        return []  # nothing unreadable can get in: every change is checked first

    def search(
        self, query: str, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[SearchHit]:
        return self._query(lambda db: index.search(db, query, Scope(days=days), limit, offset))

    def insight_rows(self) -> pd.DataFrame:
        return self._query(lambda db: index.frame(db, Scope()))

    def insights(self, start: date | None = None, end: date | None = None) -> Insights:
        return self._query(lambda db: index.insights(db, Scope(), start, end))

    def imported_sources(self) -> set[str]:
        return self._query(lambda db: index.sources(db, Scope()))

    def create(self, conversation: Conversation) -> Conversation:
        if not is_valid_id(conversation.id):
            raise ConversationNotFound(conversation.id)
        for position, message in enumerate(conversation.messages):
            check_message(message, position)
        data = encode(conversation)  # the JSON store's limits (size, strict JSON), so copies go both ways
        with self._lock:
            if conversation.id in self._live:
                raise ConversationExists(conversation.id)
            self._save(conversation.id, data)
        return conversation

    def _change(self, conversation_id: str, change: Change) -> Conversation:
        with self._lock:
            conversation = self.get(conversation_id)
            change(conversation)
            self._save(conversation_id, encode(conversation))
            return conversation

    def delete(self, conversation_id: str) -> None:
        with self._lock:
            data = self._live.pop(conversation_id, None) if is_valid_id(conversation_id) else None
            if data is None:
                raise ConversationNotFound(conversation_id)
            self._trash[conversation_id] = (datetime.now(UTC), data)
            self._unindex(conversation_id)

    def deleted(self) -> list[ConversationSummary]:
        with self._lock:
            trashed = sorted(self._trash.values(), key=lambda item: item[0], reverse=True)
            return [_decoded(data).summary() for _, data in trashed]

    def get_deleted(self, conversation_id: str) -> Conversation:
        with self._lock:
            if not is_valid_id(conversation_id) or conversation_id not in self._trash:
                raise ConversationNotFound(conversation_id)
            return _decoded(self._trash[conversation_id][1])

    def restore(self, conversation_id: str) -> None:
        with self._lock:
            if not is_valid_id(conversation_id) or conversation_id not in self._trash:
                raise ConversationNotFound(conversation_id)
            if conversation_id in self._live:
                raise ConversationExists(conversation_id)
            self._save(conversation_id, self._trash.pop(conversation_id)[1])

    def purge_deleted(self, deleted_before: datetime) -> int:
        with self._lock:
            old = [i for i, (deleted_at, _) in self._trash.items() if deleted_at < deleted_before]
            for conversation_id in old:
                del self._trash[conversation_id]
            return len(old)

    def delete_forever(self, conversation_id: str) -> None:
        with self._lock:
            if not is_valid_id(conversation_id) or self._trash.pop(conversation_id, None) is None:
                raise ConversationNotFound(conversation_id)

    def _save(self, conversation_id: str, data: bytes) -> None:
        index.write(self._index, [Entry(conversation_id, _NO_KEY, _decoded(data))])
        self._live[conversation_id] = data

    def _unindex(self, conversation_id: str) -> None:
        index.write(self._index, [], [conversation_id])

    def _query(self, run: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return run(self._index)


def _decoded(data: bytes) -> Conversation:
    """The conversation as a reader of its file gets it (titles cut, every value checked)."""
    return Conversation.from_dict(json.loads(data))
