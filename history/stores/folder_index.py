"""The JSON folder's derived index (history/index.py) kept in step with its files, in `.index/`.

Each entry carries its file's stat key (mtime_ns, size, inode): a listing checks the keys, and only
files whose key changed since the index saw them are read again, so a file changed by hand or by
another process is noticed. Where inotify watches the folder (history/stores/folder_watch.py) only
the names it saw change are checked, with a full os.scandir pass at least every FULL_PASS_EVERY
seconds and whenever events may have been lost; elsewhere every listing is a full pass.

A pass that saw every change records the folder's own stat key as it was before the pass looked.
Every add, delete or rename in the folder (each save of this app is a rename) changes that key, so a
new process that finds it unchanged answers from the index at once and checks every file in a thread
meanwhile; otherwise its first pass is a full one. Only a file edited in place, by hand, while no
process watched can be missed, until that check ends. The index lives in a folder of its own, where
SQLite's -wal and -shm files come and go without touching the history folder's key.

Writes are SQLite transactions (WAL): a crash while the index is written leaves it as it was before,
and the next pass reads what changed meanwhile. A missing, corrupt or other-version index is built
again from the files; a folder where it cannot be written (read-only, full) keeps one in memory for
this process instead. One object per folder per process, shared by every session thread under one lock.
"""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from history import index
from history.index import Entry, StatKey
from history.models import Conversation
from history.stores.atomic import O_NOFOLLOW, Unreadable, private_dirs
from history.stores.folder_scan import PerFolder, is_conversation_file, stat_key
from history.stores.folder_watch import FolderWatch

INDEX_DIR = ".index"
INDEX_NAME = f"{INDEX_DIR}/index.sqlite"
BATCH = 500  # files read per transaction while building, so progress shows and a crash keeps the rest
FULL_PASS_EVERY = 30.0  # seconds; for the changes inotify cannot see (another machine's, on NFS)
RACY_NS = 2_000_000_000  # a folder changed this recently may change again within its timestamp's grain
T = TypeVar("T")
log = logging.getLogger(__name__)

# Reads one conversation file: (conversation, read-only?, stat key of what was read); raises Unreadable
# with a reason for the user, or FileNotFoundError if it vanished meanwhile.
Reader = Callable[[str, os.stat_result], tuple[Conversation, bool, StatKey]]


@dataclass
class ScanStats:
    """What the last pass did, so tests and benchmarks can see the index working."""

    files: int = 0
    parsed: int = 0
    removed: int = 0
    full: bool = True  # every file's key was checked, not only the names the watch saw change
    background: bool = False  # the folder was unchanged: every file's key is checked in a thread
    rebuilt: bool = False  # the index file was missing, damaged or of another version
    in_memory: bool = False  # the folder could not hold it
    names: list[str] = field(default_factory=list)  # the files that were read


class FolderIndex:
    """The index of one folder: refresh() brings it up to date, query() reads it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / INDEX_NAME
        self.lock = threading.RLock()
        self.stats = ScanStats()
        self.progress: tuple[int, int] | None = None  # (read, to read) while a pass reads many files
        self.scanned = False
        self._connection: sqlite3.Connection | None = None
        self._keys: dict[str, StatKey] = {}  # what the index holds, as this process last saw it
        self._in_memory = False
        self._rebuilt = False
        self._read: Reader | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) of the file the connection has open
        self._watch = FolderWatch(root)
        self._full_at: float | None = None  # when the last full pass began; None: the next one is full
        self._trusted: StatKey | None = None  # the folder's key the index recorded, until the first pass
        self._recorded: StatKey | None = None  # the folder's key the index holds
        self._checker: threading.Thread | None = None

    def refresh(self, read: Reader) -> None:
        """One directory pass: read the files whose key changed, drop the ones that are gone."""
        with self.lock:
            self._read = read
            stats = ScanStats()
            self._guarded(lambda: self._pass(read, stats), stats)
            stats.rebuilt, self._rebuilt = self._rebuilt, False
            stats.in_memory = self._in_memory
            self.stats, self.scanned = stats, True

    def query(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """run(the index) under the lock; a damaged index is built again first."""
        with self.lock:
            def again() -> T:
                if self._read is not None and self._connection is None:
                    self._pass(self._read, ScanStats())
                return run(self._open())

            return self._guarded(again)

    def record(self, name: str, info: os.stat_result, conversation: Conversation) -> None:
        """Index a file this process just wrote, so no pass needs to read it again."""
        entry = Entry(name, stat_key(info), conversation)
        with self.lock:
            try:
                self._write([entry], [])
            except (sqlite3.Error, _Unusable):
                self._keys.pop(name, None)  # the next pass reads the file instead

    def has(self, name: str) -> bool:
        """Whether the last pass (or a write since) saw this file."""
        with self.lock:
            return name in self._keys

    def wait(self) -> None:
        """Until the check of every file a new process started in a thread ends (tests, benchmarks)."""
        if self._checker is not None:
            self._checker.join()

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.close()
            self._connection, self._keys, self._full_at, self._trusted = None, {}, None, None

    # Internals

    def _guarded(self, run: Callable[[], T], stats: ScanStats | None = None) -> T:
        """run(); if the index file fails, start over once: rebuilt if damaged, else kept in memory."""
        try:
            return run()
        except (sqlite3.Error, _Foreign, _Unusable) as error:
            if self._in_memory:
                raise
            self.close()
            if _damaged(error):
                log.warning("The history index %s is damaged or foreign; building it again", self.path)
                self._delete_files()
            else:
                log.warning("Keeping the history index in memory: %s cannot be used (%s)", self.path, error)
                self._to_memory()
            if self._read is not None:
                self._pass(self._read, stats or ScanStats())
            return run()

    def _pass(self, read: Reader, stats: ScanStats) -> None:
        if self._connection is not None and not self._in_memory and self._opened != _identity(self.path):
            self.close()  # deleted, replaced or moved away with its folder: never write to that file again
        self._open()
        watched = self._watched()
        full_at, self._full_at = self._full_at, None  # until this pass succeeds, the next one is full
        trusted, self._trusted = self._trusted, None
        if watched is None:
            self._watch.start()  # before the folder's key: what changes after it is seen by the next pass
            full_at = time.monotonic()
        folder = _folder_key(self.root)
        if watched is None and folder is not None and folder == trusted:
            self._checker = threading.Thread(target=self._check_all, args=(read, self._open()), daemon=True)
            self._checker.start()
            stats.background = True
        elif watched is None:
            seen, changed = _scan(self.root, self._keys)
            self._apply(read, seen, changed, [name for name in self._keys if name not in seen], stats)
        else:
            self._apply(read, *self._check(watched), stats)
        if folder is not None and folder != self._recorded and not self._in_memory:
            index.write(self._open(), [], folder=folder)
            self._recorded = folder
        stats.files, stats.full = len(self._keys), watched is None and not stats.background
        self._full_at = full_at

    def _check_all(self, read: Reader, connection: sqlite3.Connection) -> None:
        """The full pass of a new process, in a thread: keys compared without the lock, the changed
        files read under it; if it fails, the next listing makes a full pass itself."""
        try:
            with self.lock:
                known = dict(self._keys)
            seen, changed = _scan(self.root, known)
            with self.lock:
                if self._connection is connection:  # else closed meanwhile: its successor checks
                    self._apply(read, *self._check({*changed, *(known.keys() - seen.keys())}), ScanStats())
        except Exception:
            log.exception("Checking every file of %s in the background failed", self.root)
            with self.lock:
                self._full_at = None

    def _apply(self, read: Reader, seen: dict[str, StatKey], changed: dict[str, os.stat_result],
               gone: list[str], stats: ScanStats) -> None:
        """Read the changed files and drop the gone ones, BATCH files per transaction."""
        if changed:  # another process may have indexed them already
            known = index.keys(self._open(), changed)
            for name in changed:
                if known.get(name) == seen[name]:
                    self._keys[name] = known[name]
            changed = {name: info for name, info in changed.items() if self._keys.get(name) != seen[name]}
        names = list(changed)
        total = len(names)
        self.progress = (0, total) if total > BATCH else None
        try:
            for start in range(0, max(total, 1), BATCH):
                part = names[start : start + BATCH]
                batch = [entry for name in part if (entry := self._entry(read, name, changed[name], stats))]
                self._write(batch, gone if start == 0 else [])
                if self.progress is not None:
                    self.progress = (min(start + BATCH, total), total)
        finally:
            self.progress = None
        stats.removed = len(gone)

    def _watched(self) -> set[str] | None:
        """The names the watch saw change since the last pass, or None if a full pass is due."""
        if self._full_at is None or time.monotonic() - self._full_at > FULL_PASS_EVERY:
            return None
        return self._watch.changed()

    def _check(self, names: Iterable[str]) -> tuple[dict[str, StatKey], dict[str, os.stat_result], list[str]]:
        """As _scan, for the named files only: their keys, the changed ones' stat, and the gone ones."""
        seen: dict[str, StatKey] = {}
        changed: dict[str, os.stat_result] = {}
        gone: list[str] = []
        for name in names:
            if not is_conversation_file(name):
                continue
            try:
                info = os.lstat(self.root / name)
            except FileNotFoundError:
                if name in self._keys:
                    gone.append(name)
                continue
            key = seen[name] = stat_key(info)
            if self._keys.get(name) != key:
                changed[name] = info
        return seen, changed, gone

    def _write(self, batch: list[Entry], gone: list[str]) -> None:
        """One transaction, then what this process knows the index holds."""
        if not batch and not gone:
            return
        connection = self._open()
        index.write(connection, batch, gone)
        for name in gone:
            self._keys.pop(name, None)
        for entry in batch:
            self._keys[entry.name] = entry.key

    def _entry(self, read: Reader, name: str, info: os.stat_result, stats: ScanStats) -> Entry | None:
        try:
            conversation, read_only, key = read(name, info)
            entry = Entry(name, key, conversation, read_only)
        except Unreadable as problem:
            entry = Entry(name, stat_key(info), reason=problem.reason)
        except FileNotFoundError:
            return None
        stats.parsed += 1
        stats.names.append(name)
        return entry

    def _open(self) -> sqlite3.Connection:
        """The connection, opening (and if new or of another version, creating) the index first."""
        if self._connection is not None:
            return self._connection
        if not self.root.is_dir():  # nothing saved yet: an empty index, until the folder exists
            empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            index.create(empty)
            return empty
        # Made 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
        try:
            private_dirs(self.path.parent)
            if not stat.S_ISDIR(os.lstat(self.path.parent).st_mode):  # a symbolic link is never followed
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.path.parent))
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW, 0o600))
            os.chmod(self.path, 0o600)
        except OSError as error:  # a read-only folder, a symbolic link in the index's place
            raise _Unusable(str(error)) from error
        connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses no committed transaction
            if not index.is_current(connection):
                if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:  # not a new file
                    raise _Foreign(f"{self.path} holds something else than this version's index")
                index.create(connection)
                self._rebuilt = True
            keys, self._trusted = index.keys(connection), index.folder_key(connection)
        except BaseException:
            connection.close()
            raise
        self._connection, self._keys, self._opened = connection, keys, _identity(self.path)
        self._recorded = self._trusted
        return connection

    def _to_memory(self) -> None:
        self._connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        index.create(self._connection)
        self._keys, self._in_memory, self._full_at = {}, True, None

    def _delete_files(self) -> None:
        self._rebuilt = True
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")


def _scan(root: Path, known: dict[str, StatKey]) -> tuple[dict[str, StatKey], dict[str, os.stat_result]]:
    """Every conversation file's key, and the directory entry of each whose key differs from `known`.
    One loop, keeping no stat result of an unchanged file: it runs on every full pass."""
    seen: dict[str, StatKey] = {}
    changed: dict[str, os.stat_result] = {}
    try:
        entries = os.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return seen, changed
    with entries:
        for dir_entry in entries:
            name = dir_entry.name
            if not is_conversation_file(name):
                continue
            try:
                info = dir_entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            key = seen[name] = stat_key(info)
            if known.get(name) != key:
                changed[name] = info
    return seen, changed


def _folder_key(root: Path) -> StatKey | None:
    """The folder's own key (mtime_ns, ctime_ns, inode); None if unknown or too recent to tell apart
    from a change made within the same tick of its clock."""
    now = time.time_ns()
    try:
        info = os.stat(root)
    except OSError:
        return None
    if now - max(info.st_mtime_ns, info.st_ctime_ns) < RACY_NS:
        return None
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class _Unusable(Exception):
    """The index file cannot be made or opened here: the index is kept in memory instead."""


class _Foreign(Exception):
    """The index file is a database of another version (or another program): it is built again."""


# The file cannot be used now (written, opened, locked): anything else means it is damaged.
_UNUSABLE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM",
             "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_NOMEM", "SQLITE_NOLFS", "SQLITE_AUTH")


def _damaged(error: Exception) -> bool:
    """Whether the index file is corrupt, foreign or half-made (rather than unwritable or busy)."""
    if isinstance(error, _Foreign):
        return True
    if isinstance(error, sqlite3.Error):
        return not (error.sqlite_errorname or "").startswith(_UNUSABLE)
    return False  # _Unusable: a symbolic link, a folder that refuses files


_indexes: PerFolder[FolderIndex] = PerFolder(FolderIndex)
index_for = _indexes.get


def forget_all() -> None:
    """Close and forget every folder's index, as a new process would start (tests, benchmarks)."""
    for folder_index in _indexes.clear():
        folder_index.close()
