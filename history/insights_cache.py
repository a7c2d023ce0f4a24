"""The Insights page's message frame for a history folder, kept in memory between page loads.

Like the search text (history/search_index.py), each file is known by the (mtime_ns, size, inode)
the listing last saw, so a page load re-reads only the files that changed since the previous one:
their old rows and those of deleted files are dropped from the frame and the new rows appended;
the rest of the frame is reused as it is. In memory only, one frame per folder shared by every
session (sessions are threads of one process): the first load in a process reads every file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from history.atomic import Unreadable
from history.insights import message_rows, messages_frame
from history.json_store import JsonHistoryStore, read_file
from history.models import Conversation, ConversationSummary, InvalidConversation
from history.store import ConversationNotFound, HistoryStore
from history.summary_cache import SUFFIX, PerFolder, StatKey, stat_key
from history.summary_cache import cache_for as summaries_for

# Reads one conversation file by name: the conversation and the stat key of what was read.
Reader = Callable[[str], tuple[Conversation, StatKey]]
_UNKNOWN_KEY: StatKey = (-1, -1, -1)  # never equal to a real key, so the file is read


@dataclass
class InsightStats:
    """What the last refresh did, so tests and the benchmark can see the cache working."""

    files: int = 0
    parsed: int = 0
    removed: int = 0
    names: list[str] = field(default_factory=list)  # the files that were read


class InsightCache:
    """The message frame of one folder's conversations, and the stat key of each file in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.stats = InsightStats()
        self._keys: dict[str, StatKey] = {}
        self._frame: pd.DataFrame | None = None

    def frame(self, wanted: dict[str, StatKey], read: Reader) -> pd.DataFrame:
        """The rows of every wanted file that is still readable; reads only files whose key changed."""
        with self.lock:
            stats = InsightStats()
            keys: dict[str, StatKey] = {}
            changed = []
            for name, key in wanted.items():
                if key != _UNKNOWN_KEY and self._keys.get(name) == key:
                    keys[name] = key
                else:
                    changed.append(name)
            rows: list[tuple] = []
            for name in sorted(changed):
                try:
                    conversation, keys[name] = read(name)
                except (FileNotFoundError, Unreadable):
                    continue  # deleted or broken since the listing; the listing will report it
                rows.extend(message_rows(conversation))
                stats.parsed += 1
                stats.names.append(name)
            gone = self._keys.keys() - keys.keys()
            stale = [name for name in changed if name in self._keys] + sorted(gone)
            if self._frame is None:
                self._frame = messages_frame(rows)
            elif stale or rows:
                self._frame = _merge(self._frame, [name.removesuffix(SUFFIX) for name in stale], rows)
            self._keys = keys
            stats.files, stats.removed = len(keys), len(gone)
            self.stats = stats
            return self._frame.copy(deep=False)  # copy-on-write: a caller's change never reaches ours


def _merge(frame: pd.DataFrame, stale_ids: list[str], rows: list[tuple]) -> pd.DataFrame:
    """The frame without the stale conversations' rows, plus the new rows; ids stay categorical."""
    kept = frame[~frame["conversation_id"].isin(stale_ids)]
    added = messages_frame(rows)
    kept_ids = kept["conversation_id"].cat.remove_unused_categories()
    categories = kept_ids.cat.categories.union(added["conversation_id"].cat.categories)
    parts = [
        part.assign(conversation_id=ids.cat.set_categories(categories))
        for part, ids in ((kept, kept_ids), (added, added["conversation_id"]))
    ]
    return pd.concat(parts, ignore_index=True)


def _reader(root: Path) -> Reader:
    def read(name: str) -> tuple[Conversation, StatKey]:
        conversation, _legacy, info = read_file(root / name)
        return conversation, stat_key(info)

    return read


def _readable(store: HistoryStore, summaries: Iterable[ConversationSummary]) -> Iterable[Conversation]:
    for summary in summaries:
        try:
            yield store.get(summary.id)
        except (ConversationNotFound, InvalidConversation):
            continue


def insight_rows(store: HistoryStore) -> pd.DataFrame:
    """history.insights.messages_frame of every listed conversation, newest changes read from disk.

    On the JSON folder only files changed since the last call in this process are read again;
    any other store is read whole (correct, not fast).
    """
    summaries = store.list()
    if not isinstance(store, JsonHistoryStore):
        return messages_frame(_readable(store, summaries))
    keys = summaries_for(store.root).readable_keys()
    names = (f"{summary.id}{SUFFIX}" for summary in summaries)
    wanted = {name: keys.get(name, _UNKNOWN_KEY) for name in names}
    return cache_for(store.root).frame(wanted, _reader(store.root))


_frames: PerFolder[InsightCache] = PerFolder(lambda root: InsightCache(root))
cache_for = _frames.get
forget_all = _frames.clear
