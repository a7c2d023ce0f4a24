"""Listing without re-reading every file: summaries kept in memory and in a hidden index file.

Each entry is keyed by the file's (mtime_ns, size, inode); a listing is one os.scandir pass
that re-parses only files whose key changed. The index file is only a cache: a missing,
stale or corrupt one is rebuilt silently.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from history.models import ConversationSummary
from history.stores.atomic import Unreadable, read_regular_file, write_atomic
from history.stores.base import UnreadableFile

INDEX_NAME = ".index.json"
INDEX_VERSION = 1
SUFFIX = ".json"
SAVE_AFTER_CHANGES = 100  # this many unsaved changes make the index worth rewriting at once
SAVE_INTERVAL = 30.0  # otherwise rewrite it at most this often (seconds)
_MAX_INDEX_BYTES = 512 * 2**20

StatKey = tuple[int, int, int]
UNKNOWN_KEY: StatKey = (-1, -1, -1)  # never equal to a real key, so a cache reads the file again
# Reads one conversation file: returns its summary and the stat key of what it read, raises
# Unreadable with a reason for the user, or FileNotFoundError if it vanished meanwhile.
Parser = Callable[[str, os.stat_result], tuple[ConversationSummary, StatKey]]


def stat_key(info: os.stat_result) -> StatKey:
    """What must change when a file is rewritten (os.replace gives a new inode)."""
    inode = 0 if os.name == "nt" else info.st_ino  # scandir reports no inode on Windows
    return (info.st_mtime_ns, info.st_size, inode)


def order_of(updated_at: str) -> float:
    """Sort key that copes with hand-edited times in other ISO forms or time zones."""
    try:
        moment = datetime.fromisoformat(updated_at)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(slots=True)
class _Entry:
    key: StatKey
    summary: ConversationSummary | None
    reason: str | None
    order: float = 0.0


def _entry(key: StatKey, summary: ConversationSummary | None, reason: str | None) -> _Entry:
    return _Entry(key, summary, reason, order_of(summary.updated_at) if summary else 0.0)


@dataclass
class ScanStats:
    """What the last listing did, so tests and benchmarks can see the cache working."""

    files: int = 0
    parsed: int = 0
    removed: int = 0
    index_loaded: bool = False
    index_saved: bool = False
    names: list[str] = field(default_factory=list)  # the files that were parsed


class SummaryCache:
    """Summaries of one folder's files, shared by every store object on that folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.stats = ScanStats()
        self.scanned = False
        self._entries: dict[str, _Entry] = {}
        self._loaded = False
        self._unsaved = 0
        self._saved_at: float | None = None
        self._sorted: list[ConversationSummary] | None = None
        self._problems: list[UnreadableFile] = []

    def refresh(self, parse: Parser) -> list[ConversationSummary]:
        """Bring the cache up to date with one directory pass; newest first."""
        with self.lock:
            stats = ScanStats()
            if not self._loaded:
                stats.index_loaded = self._load_index()
                self._loaded = True
            seen = self._scan(parse, stats)
            for name in self._entries.keys() - seen:
                del self._entries[name]
                stats.removed += 1
            if stats.parsed or stats.removed:
                self._unsaved += stats.parsed + stats.removed
                self._sorted = None
            stats.files = len(seen)
            stats.index_saved = self._maybe_save_index()
            self.stats = stats
            self.scanned = True
            return self._summaries()

    def problems(self) -> list[UnreadableFile]:
        """Unreadable files found by the last refresh, by name."""
        with self.lock:
            return list(self._problems)

    def has(self, name: str) -> bool:
        """Whether the last refresh (or a write since) saw this file."""
        with self.lock:
            return name in self._entries

    def readable_keys(self) -> dict[str, StatKey]:
        """Stat keys of the readable files as last seen, so other caches (search) skip a second scan."""
        with self.lock:
            return {name: e.key for name, e in self._entries.items() if e.summary is not None}

    def listed_keys(self, summaries: Iterable[ConversationSummary]) -> dict[str, StatKey]:
        """Each listed conversation's file name and the stat key the listing saw (UNKNOWN_KEY if none),
        what the search and insights caches compare with their own."""
        keys = self.readable_keys()
        names = (f"{summary.id}{SUFFIX}" for summary in summaries)
        return {name: keys.get(name, UNKNOWN_KEY) for name in names}

    def record(self, name: str, info: os.stat_result, summary: ConversationSummary) -> None:
        """Remember a file this process just wrote, so the next listing need not parse it."""
        with self.lock:
            self._entries[name] = _entry(stat_key(info), summary, None)
            self._unsaved += 1
            self._sorted = None

    def _scan(self, parse: Parser, stats: ScanStats) -> set[str]:
        """Stat every conversation file; re-parse those whose key changed."""
        seen: set[str] = set()
        try:
            entries = os.scandir(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return seen
        with entries:
            for dir_entry in entries:
                name = dir_entry.name
                if name.startswith(".") or not name.endswith(SUFFIX):
                    continue
                try:
                    info = dir_entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                cached = self._entries.get(name)
                changed = cached is None or cached.key != stat_key(info)
                if changed and not self._parse_into(parse, name, info, stats):
                    continue  # vanished since the directory was read
                seen.add(name)
        return seen

    def _parse_into(self, parse: Parser, name: str, info: os.stat_result, stats: ScanStats) -> bool:
        """Parse one changed file into the cache; False if it disappeared meanwhile."""
        try:
            summary, key = parse(name, info)
            self._entries[name] = _entry(key, summary, None)
        except Unreadable as problem:
            self._entries[name] = _entry(stat_key(info), None, problem.reason)
        except FileNotFoundError:
            return False
        stats.parsed += 1
        stats.names.append(name)
        return True

    def _summaries(self) -> list[ConversationSummary]:
        """Newest first; rebuilt only after something changed."""
        if self._sorted is None:
            readable = [(e.order, e.summary.id, e.summary) for e in self._entries.values() if e.summary]
            readable.sort(key=lambda item: (item[0], item[1]), reverse=True)
            self._sorted = [item[2] for item in readable]
            self._problems = sorted(
                (UnreadableFile(name, e.reason) for name, e in self._entries.items() if e.reason),
                key=lambda problem: problem.name,
            )
        return list(self._sorted)

    def _load_index(self) -> bool:
        """Seed the cache from the index file; any problem means starting empty."""
        try:
            raw, _ = read_regular_file(self.root / INDEX_NAME, _MAX_INDEX_BYTES)
            loaded = _decode_index(raw)
        except (OSError, Unreadable, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return False
        for name, entry in loaded.items():
            self._entries.setdefault(name, entry)  # a write recorded before the first listing wins
        return True

    def _maybe_save_index(self) -> bool:
        """Rewrite the index when it is far enough behind; never on every turn."""
        now = time.monotonic()
        due = self._saved_at is None or now - self._saved_at >= SAVE_INTERVAL
        if not self._unsaved or not (due or self._unsaved >= SAVE_AFTER_CHANGES):
            return False
        if not self.root.is_dir():
            return False
        try:
            write_atomic(self.root / INDEX_NAME, _encode_index(self._entries))
        except OSError:
            return False  # a read-only folder still lists, just without the speed-up
        self._unsaved = 0
        self._saved_at = now
        return True


def _encode_index(entries: dict[str, _Entry]) -> bytes:
    """Compact JSON: this file is for the app, not for people."""
    rows = {
        name: [*e.key, _summary_row(e.summary) if e.summary else None, e.reason]
        for name, e in entries.items()
    }
    text = json.dumps({"version": INDEX_VERSION, "entries": rows}, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def _summary_row(s: ConversationSummary) -> list:
    return [s.id, s.title, s.created_at, s.updated_at, s.message_count, s.model, s.read_only]


def _decode_index(raw: bytes) -> dict[str, _Entry]:
    """Parse and type-check the index; raises ValueError/TypeError on anything unexpected."""
    data = json.loads(raw.decode("utf-8"))
    if data.get("version") != INDEX_VERSION:
        raise ValueError("index version")
    entries = {}
    for name, (mtime, size, inode, row, reason) in data["entries"].items():
        if not all(type(n) is int for n in (mtime, size, inode)):
            raise TypeError("stat key")
        if (row is None) == (reason is None) or (reason is not None and type(reason) is not str):
            raise TypeError("entry")
        entries[name] = _entry((mtime, size, inode), _summary_from_row(row) if row else None, reason)
    return entries


def _summary_from_row(row: list) -> ConversationSummary:
    identifier, title, created, updated, count, model, read_only = row
    if not all(type(v) is str for v in (identifier, title, created, updated, model)):
        raise TypeError("summary text")
    if type(count) is not int or type(read_only) is not bool:
        raise TypeError("summary count")
    return ConversationSummary(identifier, title, created, updated, count, model, read_only)


T = TypeVar("T")


class PerFolder(Generic[T]):
    """One cache object per folder in this process, shared by every session thread."""

    def __init__(self, make: Callable[[Path], T]):
        self._make = make
        self._caches: dict[Path, T] = {}
        self._guard = threading.Lock()

    def get(self, root: Path) -> T:
        with self._guard:
            cache = self._caches.get(root)
            if cache is None:
                cache = self._caches[root] = self._make(root)
            return cache

    def clear(self) -> None:
        """Forget every folder, as a new process would start (for tests and benchmarks)."""
        with self._guard:
            self._caches.clear()


_summaries: PerFolder[SummaryCache] = PerFolder(lambda root: SummaryCache(root))
cache_for = _summaries.get
forget_all = _summaries.clear
