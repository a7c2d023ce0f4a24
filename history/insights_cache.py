"""The Insights page's message frame for a history, kept in memory (a folder's also in a hidden index file).

Like the search text (history/search_index.py), each file is known by the (mtime_ns, size, inode)
the listing last saw, so a page load re-reads only the files that changed since the previous one:
their old rows and those of deleted files are dropped from the frame and the new rows appended;
the rest of the frame is reused as it is. One frame per folder, shared by every session (sessions
are threads of one process). The index file (.insights-index: the frame as Parquet, with each
file's stat key) lets the first load after a restart read only the files that changed since it was
written; it is only a cache: a missing, stale, corrupt or other-version one is rebuilt silently.

In a database (history/stores/sql_store.py) each conversation is known by its revision, raised by every
change, as search does there (history/search.py): a load reads, in bulk, only the conversations
whose revision changed since the previous load in this process. One frame per (database, owner);
it lives in memory only, so the first load after a restart reads every conversation.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from history import insights
from history.index_file import IndexFile
from history.insights import COLUMNS, FEEDBACK, ROLES, SOURCES, STATUSES, message_rows, messages_frame
from history.models import Conversation, ConversationSummary
from history.stores.atomic import Unreadable
from history.stores.base import HistoryStore, keeps_revisions, readable_conversations
from history.stores.json_store import JsonHistoryStore, read_file
from history.summary_cache import SUFFIX, UNKNOWN_KEY, PerFolder, StatKey, stat_key
from history.summary_cache import cache_for as summaries_for

# Reads conversations by name: (name, conversation, key of what was read) for each one still readable.
# A name is a file name in a folder, a conversation id in a database; a database's key is (revision, 0, 0).
Reader = Callable[[list[str]], Iterable[tuple[str, Conversation, StatKey]]]
INDEX_NAME = ".insights-index"
INDEX_MAGIC = b"chatbot-insights-index 1\n"  # a new number when the layout below changes
SAVE_AFTER_CHANGES = 100  # a load that changed this many files' rows rewrites the index at once
SAVE_INTERVAL = 300.0  # otherwise at most this often (seconds), when anything changed
_MAX_INDEX_BYTES = 2 * 2**30
_DIGEST_SIZE = 16  # bytes of BLAKE2b over everything after the digest line
_CODED = {"role": ROLES, "source": SOURCES, "feedback": FEEDBACK, "status": STATUSES}  # stored as codes


def _code_version() -> str:
    """Changes whenever history/insights.py does, so rows that other code made are never reused."""
    try:
        source = Path(insights.__file__).read_bytes()
    except (OSError, TypeError):  # no source file: the magic number alone decides
        source = b""
    return hashlib.blake2b(source, digest_size=8).hexdigest()


_CODE_VERSION = _code_version()


@dataclass
class InsightStats:
    """What the last refresh did, so tests and the benchmark can see the cache working."""

    files: int = 0
    parsed: int = 0
    removed: int = 0
    names: list[str] = field(default_factory=list)  # the files (in a database: the ids) that were read
    index_loaded: bool = False
    index_saved: bool = False


class InsightCache:
    """The message frame of one history's conversations, and the key of each: in a folder, each file's
    stat key (with the index file); in a database (root None, no file), each conversation's revision."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.stats = InsightStats()
        self._keys: dict[str, StatKey] = {}
        self._frame: pd.DataFrame | None = None
        self._file = IndexFile(root / INDEX_NAME, _MAX_INDEX_BYTES) if root is not None else None
        self._loaded = self._file is None
        self._suffix = SUFFIX if root is not None else ""  # what a name adds to the conversation id

    def frame(self, wanted: dict[str, StatKey], read: Reader) -> pd.DataFrame:
        """The rows of every wanted conversation still readable; reads only those whose key changed."""
        with self.lock:
            stats = InsightStats()
            if not self._loaded:
                self._loaded = True
                stats.index_loaded = self._load_index()
            keys: dict[str, StatKey] = {}
            changed = []
            for name, key in wanted.items():
                if key != UNKNOWN_KEY and self._keys.get(name) == key:
                    keys[name] = key
                else:
                    changed.append(name)
            rows: list[tuple] = []
            for name, conversation, key in read(sorted(changed)):
                keys[name] = key
                rows.extend(message_rows(conversation))
                stats.parsed += 1
                stats.names.append(name)
            gone = self._keys.keys() - keys.keys()
            stale = [name for name in changed if name in self._keys] + sorted(gone)
            if self._frame is None:
                self._frame = messages_frame(rows)
            elif stale or rows:
                self._frame = _merge(self._frame, [name.removesuffix(self._suffix) for name in stale], rows)
            self._keys = keys
            stats.files, stats.removed = len(keys), len(gone)
            frame = self._frame
            if self._file is not None:
                stats.index_saved = self._file.save_if_due(
                    len(set(stats.names).union(stale)),  # the files whose rows changed
                    lambda: encode_index(keys, frame),
                    SAVE_AFTER_CHANGES,
                    SAVE_INTERVAL,
                )
            self.stats = stats
            return self._frame.copy(deep=False)  # copy-on-write: a caller's change never reaches ours

    def _load_index(self) -> bool:
        """Start from the index file's frame and keys; False (starting empty) if it is missing or bad."""
        loaded = self._file.load(decode_index, (pa.ArrowException,)) if self._file is not None else None
        if loaded is None:
            return False
        self._keys, self._frame = loaded
        return True


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


def _digest(body: bytes | memoryview) -> bytes:
    return hashlib.blake2b(body, digest_size=_DIGEST_SIZE).hexdigest().encode("ascii")


def encode_index(keys: dict[str, StatKey], frame: pd.DataFrame) -> bytes:
    """Magic line, digest line, a JSON header line (code version, rows, each file's stat key), Parquet.

    The fixed categories go in as their int8 codes: Parquet would keep only the ones in use.
    """
    coded = frame.assign(**{name: frame[name].cat.codes for name in _CODED})
    parquet = io.BytesIO()
    coded.to_parquet(parquet, engine="pyarrow", index=False)
    files = [[name, *key] for name, key in keys.items()]
    head = json.dumps({"code": _CODE_VERSION, "rows": len(frame), "files": files}, separators=(",", ":"))
    body = head.encode("ascii") + b"\n" + parquet.getvalue()
    return INDEX_MAGIC + _digest(body) + b"\n" + body


def decode_index(raw: bytes) -> tuple[dict[str, StatKey], pd.DataFrame]:
    """The stat keys and the frame; ValueError, TypeError, LookupError or an Arrow error if anything's off."""
    if not raw.startswith(INDEX_MAGIC):
        raise ValueError("not an insights index of this version")
    start = len(INDEX_MAGIC)
    body_start = start + 2 * _DIGEST_SIZE + 1
    if raw[start:body_start] != _digest(memoryview(raw)[body_start:]) + b"\n":
        raise ValueError("the index is damaged or incomplete")
    head_end = raw.index(b"\n", body_start)
    head = json.loads(raw[body_start:head_end])
    if head["code"] != _CODE_VERSION:
        raise ValueError("rows made by another version of history/insights.py")
    keys: dict[str, StatKey] = {}
    for name, mtime, size, inode in head["files"]:
        if type(name) is not str or not all(type(n) is int for n in (mtime, size, inode)):
            raise TypeError("index entry")
        keys[name] = (mtime, size, inode)
    frame = pq.read_table(pa.BufferReader(memoryview(raw)[head_end + 1 :])).to_pandas()
    for name, categories in _CODED.items():
        frame[name] = pd.Categorical.from_codes(frame[name], categories=categories)  # checks the range
    if len(frame) == 0:  # Parquet cannot type the ids of no rows
        frame["conversation_id"] = frame["conversation_id"].astype("category")
    _check(frame, keys, head["rows"])
    return keys, frame


def _check(frame: pd.DataFrame, keys: dict[str, StatKey], rows: object) -> None:
    """The frame messages_frame would build, for no conversation but the files listed."""
    expected = messages_frame([]).dtypes
    ids = frame["conversation_id"]
    if list(frame.columns) != COLUMNS or len(frame) != rows or not isinstance(ids.dtype, pd.CategoricalDtype):
        raise ValueError("index columns")
    if any(frame[name].dtype != expected[name] for name in COLUMNS[1:]):
        raise TypeError("index column types")
    stems = {name.removesuffix(SUFFIX) for name in keys}
    used = ids.cat.remove_unused_categories().cat.categories.tolist()  # tolist: iterating the Index is slow
    if ids.isna().any() or not set(used) <= stems:
        raise ValueError("rows of a file the index does not list")


def _file_reader(root: Path) -> Reader:
    def read(names: list[str]) -> Iterator[tuple[str, Conversation, StatKey]]:
        for name in names:
            try:
                conversation, _legacy, info = read_file(root / name)
            except (FileNotFoundError, Unreadable):
                continue  # deleted or broken since the listing; the listing will report it
            yield name, conversation, stat_key(info)

    return read


def _database_reader(store: HistoryStore, summaries: list[ConversationSummary], revisions: dict) -> Reader:
    """Reads ids with get_many(), 500 at a time; each keyed by the revision read before it, so a
    change made in between is read again on the next load."""
    listed = {summary.id: summary for summary in summaries}

    def read(ids: list[str]) -> Iterator[tuple[str, Conversation, StatKey]]:
        for summary, conversation in readable_conversations(store, [listed[i] for i in ids]):
            yield summary.id, conversation, (revisions.get(summary.id, -1), 0, 0)

    return read


def insight_rows(store: HistoryStore) -> pd.DataFrame:
    """history.insights.messages_frame of every listed conversation; only changes are read again.

    On the JSON folder only files changed since the last call in this process (or since the index
    file was written) are read again; in a database, only conversations whose revision changed since
    the last call in this process. Any other store is read whole (correct, not fast).
    """
    summaries = store.list()
    if isinstance(store, JsonHistoryStore):
        wanted = summaries_for(store.root).listed_keys(summaries)
        return cache_for(store.root).frame(wanted, _file_reader(store.root))
    if keeps_revisions(store):
        revisions = store.revisions()  # after the listing, before the reads
        wanted = {s.id: (revisions[s.id], 0, 0) if s.id in revisions else UNKNOWN_KEY for s in summaries}
        reader = _database_reader(store, summaries, revisions)
        return database_cache_for(store.cache_key).frame(wanted, reader)
    return messages_frame(conversation for _, conversation in readable_conversations(store, summaries))


_frames: PerFolder[InsightCache] = PerFolder(lambda root: InsightCache(root))
cache_for = _frames.get  # a folder's cache, by its resolved path (store.root)
_database_frames: PerFolder[InsightCache] = PerFolder(lambda _key: InsightCache(None))
database_cache_for = _database_frames.get  # a database's cache, by store.cache_key: (URL, owner)


def forget_all() -> None:
    """Forget every folder's and database's frame, as a new process would start (tests, benchmarks)."""
    _frames.clear()
    _database_frames.clear()
