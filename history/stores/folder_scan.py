"""What the folder's listings know a file by, and one object per folder in a process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Generic, TypeVar

from history.index import StatKey
from history.models import ConversationSummary

SUFFIX = ".json"


def is_conversation_file(name: str) -> bool:
    """Whether a directory entry's name is a conversation file (hidden files are the store's own)."""
    return name.endswith(SUFFIX) and not name.startswith(".")

# Reads one conversation file: returns its summary and the stat key of what it read, raises
# Unreadable with a reason for the user, or FileNotFoundError if it vanished meanwhile.
Parser = Callable[[str, os.stat_result], tuple[ConversationSummary, StatKey]]
T = TypeVar("T")


def conversation_files(
    root: Path, names: Iterable[str] | None = None
) -> Iterator[tuple[str, os.stat_result]]:
    """(name, lstat) of the named conversation files, or of every one in the folder (one os.scandir)."""
    if names is not None:
        for name in filter(is_conversation_file, names):
            with suppress(FileNotFoundError):  # gone meanwhile
                yield name, os.lstat(root / name)
        return
    try:
        listing = os.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    with listing:
        for entry in listing:
            if is_conversation_file(entry.name):
                with suppress(FileNotFoundError):
                    yield entry.name, entry.stat(follow_symlinks=False)


def stat_key(info: os.stat_result) -> StatKey:
    """What must change when a file is rewritten (os.replace gives a new inode)."""
    inode = 0 if os.name == "nt" else info.st_ino  # scandir reports no inode on Windows
    return (info.st_mtime_ns, info.st_size, inode)


class PerFolder(Generic[T]):
    """One object per folder in this process, shared by every session thread."""

    def __init__(self, make: Callable[[Path], T]):
        self._make = make
        self._objects: dict[Path, T] = {}
        self._guard = threading.Lock()

    def get(self, root: Path) -> T:
        with self._guard:
            found = self._objects.get(root)
            if found is None:
                found = self._objects[root] = self._make(root)
            return found

    def clear(self) -> list[T]:
        """Forget every folder, as a new process would start (tests, benchmarks); what was forgotten."""
        with self._guard:
            forgotten = list(self._objects.values())
            self._objects.clear()
            return forgotten
