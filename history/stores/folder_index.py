"""The JSON folder's derived index (history/index.py) kept in step with its files, in `.index/`.

Each entry carries its file's stat key (mtime_ns, size, inode); a pass reads again only the files
whose key changed. With inotify (history/stores/folder_watch.py) a pass checks only the names it saw
change, and every file whenever events may have been lost; what inotify cannot see (another machine's
changes, over NFS) a check of every file in a thread finds every FULL_PASS_EVERY seconds, no query
waiting for it (an index in memory has no file for a thread to open: a query checks them there).
A full pass records the folder's own key as it was before it looked: every add, delete or rename in
the folder changes it (each save is a rename), so a new process that finds it unchanged answers at
once and starts that check; only a file edited in place while no process watched waits for it.
SQLite's -wal and -shm files come and go in `.index/`, leaving the folder's key alone. Writes are WAL
transactions: a crash leaves the index as it was. A missing, corrupt or other-version index is built
again; a folder that cannot hold it (read-only, full) gets one in memory instead.
One object per folder per process, shared by every session thread under one lock.
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
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from history import index
from history.index import Entry, StatKey
from history.models import Conversation
from history.stores import folder_watch
from history.stores.atomic import O_NOFOLLOW, Unreadable, private_dirs
from history.stores.folder_scan import PerFolder, conversation_files, stat_key

INDEX_DIR = ".index"
INDEX_NAME = f"{INDEX_DIR}/index.sqlite"
BATCH = 500  # files read per transaction while building, so progress shows and a crash keeps the rest
FULL_PASS_EVERY = 30.0  # seconds; for the changes inotify cannot see (another machine's, on NFS)
CHECK_AFTER = 1.0  # seconds; a check of every file in a thread waits for its page's other queries
RACY_NS = 2_000_000_000  # a folder changed this recently may change again within its timestamp's grain
T = TypeVar("T")
log = logging.getLogger(__name__)

# Reads one conversation file: (conversation, read-only?, stat key of what was read); raises Unreadable
# with a reason for the user, or FileNotFoundError if it vanished meanwhile.
Reader = Callable[[str, os.stat_result], tuple[Conversation, bool, StatKey]]


@dataclass
class ScanStats:
    """What the last pass did, so tests and benchmarks can see the index working."""

    parsed: int = 0
    removed: int = 0
    full: bool = True  # every file's key was checked, not only the names the watch saw change
    background: bool = False  # every file's key is checked in a thread: the folder was unchanged, or periodic
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
        self._in_memory = False
        self._rebuilt = False
        self._read: Reader | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) of the file the connection has open
        self._full_at: float | None = None  # when the last full pass began; None: the next one is full
        self._trusted: StatKey | None = None  # the folder's key the index recorded, until the first pass
        self.checker: threading.Timer | None = None  # the last check of every file in a thread

    def refresh(self, read: Reader) -> None:
        """One directory pass: read the files whose key changed, drop the ones that are gone."""
        with self.lock:
            self._read = read
            stats = ScanStats()
            self._guarded(lambda: self._pass(read, stats), stats)
            stats.rebuilt, stats.in_memory, self._rebuilt = self._rebuilt, self._in_memory, False
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
        with self.lock, suppress(sqlite3.Error, _Unusable):  # else the next pass reads it: its key differs
            index.write(self._open(), [Entry(name, stat_key(info), conversation)])

    def has(self, name: str) -> bool:
        """Whether the index holds this file."""
        return self.query(lambda connection: name in index.keys(connection, [name]))

    def close(self) -> None:
        with self.lock:
            if self.checker is not None:
                self.checker.cancel()  # if still waiting; one running finds its connection gone and stops
            if self._connection is not None:
                self._connection.close()
            self._connection, self._full_at, self._trusted = None, None, None

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
                self._connection, self._in_memory, self._full_at = _in_memory(), True, None
            if self._read is not None:
                self._pass(self._read, stats or ScanStats())
            return run()

    def _pass(self, read: Reader, stats: ScanStats) -> None:
        if self._connection is not None and not self._in_memory and self._opened != _identity(self.path):
            self.close()  # deleted, replaced or moved away with its folder: never write to that file again
        connection = self._open()
        full_at, self._full_at = self._full_at, None  # until this pass succeeds, the next one is full
        trusted, self._trusted = self._trusted, None
        due = full_at is None or time.monotonic() - full_at > FULL_PASS_EVERY
        # The periodic pass runs in a thread (the watch's names meanwhile) if a thread can open the file
        periodic = due and full_at is not None and connection is self._connection and not self._in_memory
        watched = None if due and not periodic else folder_watch.inotify.changed(self.root)
        if watched is None:
            folder_watch.inotify.watch(self.root)  # first, so any change after the key below is watched
            full_at = time.monotonic()
        folder = _folder_key(self.root)
        first = watched is None and folder is not None and folder == trusted  # new process, unchanged folder
        checking = self.checker is not None and self.checker.is_alive()  # only one check at a time
        if checking or not first:
            self._apply(read, *_compare(self.root, index.keys(connection, watched), watched), stats)
        if not checking and (first or (periodic and watched is not None)):
            self.checker = threading.Timer(CHECK_AFTER, self._check_all, (read, connection))
            self.checker.daemon = True
            self.checker.start()
            stats.background = True
            full_at = time.monotonic()
        if folder is not None and not self._in_memory and folder != index.folder_key(connection):
            index.write(connection, [], folder=folder)
        stats.full = watched is None and not stats.background
        self._full_at = full_at

    def _check_all(self, read: Reader, connection: sqlite3.Connection) -> None:
        """A full pass in a thread (a new process's first, then every FULL_PASS_EVERY seconds): keys
        compared without the lock, the changed files read under it; if it fails, the next listing
        makes a full pass itself."""
        try:
            # A connection of its own, so queries go on meanwhile; read-only, so it never makes a file
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=5.0)) as reader:
                known = index.keys(reader)
            changed, gone = _compare(self.root, known)
            names = [*changed, *gone]
            with self.lock:  # checked again: queries may have read some of them meanwhile
                if self._connection is connection:  # else closed meanwhile: its successor checks
                    self._apply(read, *_compare(self.root, index.keys(connection, names), names), ScanStats())
        except Exception:
            log.exception("Checking every file of %s in the background failed", self.root)
            with self.lock:
                self._full_at = None

    def _apply(self, read: Reader, changed: dict[str, os.stat_result], gone: list[str], stats: ScanStats):
        """Read the changed files and drop the gone ones, BATCH files per transaction."""
        if gone:
            index.write(self._open(), [], gone)
        names, stats.removed = list(changed), len(gone)
        self.progress = (0, len(names)) if len(names) > BATCH else None
        try:
            for start in range(0, len(names), BATCH):
                part = names[start : start + BATCH]
                entries = (self._entry(read, name, changed[name], stats) for name in part)
                index.write(self._open(), [entry for entry in entries if entry is not None])
                if self.progress is not None:
                    self.progress = (min(start + BATCH, len(names)), len(names))
        finally:
            self.progress = None

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
            return _in_memory()
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
            self._trusted = index.folder_key(connection)
        except BaseException:
            connection.close()
            raise
        self._connection, self._opened = connection, _identity(self.path)
        return connection

    def _delete_files(self) -> None:
        self._rebuilt = True
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")


def _compare(root: Path, known: dict[str, StatKey], names: Iterable[str] | None = None) -> tuple[
        dict[str, os.stat_result], list[str]]:
    """The stat of every conversation file (or named one) whose key differs from `known`, and the
    known ones that are gone. Keeps no stat of an unchanged file: there may be 100,000."""
    seen: set[str] = set()
    changed: dict[str, os.stat_result] = {}
    for name, info in conversation_files(root, names):
        seen.add(name)
        if known.get(name) != stat_key(info):
            changed[name] = info
    gone = [name for name in (known if names is None else names) if name not in seen and name in known]
    return changed, gone


def _folder_key(root: Path) -> StatKey | None:
    """The folder's own key (mtime_ns, ctime_ns, inode); None if unknown or too recent to tell apart
    from a change made within the same tick of its clock."""
    now = time.time_ns()
    try:
        info = os.stat(root)
    except OSError:
        return None
    recent = now - max(info.st_mtime_ns, info.st_ctime_ns) < RACY_NS
    return None if recent else (info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def _in_memory() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    index.create(connection)
    return connection


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
    """Whether the index file is corrupt, foreign or half-made (not unwritable, busy or a symbolic link)."""
    unusable = isinstance(error, sqlite3.Error) and (error.sqlite_errorname or "").startswith(_UNUSABLE)
    return not (unusable or isinstance(error, _Unusable))


_indexes: PerFolder[FolderIndex] = PerFolder(FolderIndex)
index_for = _indexes.get


def forget_all() -> None:
    """Close and forget every folder's index, as a new process would start (tests, benchmarks)."""
    for folder_index in _indexes.clear():
        folder_index.close()
