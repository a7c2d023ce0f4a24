"""The JSON folder's `.trash/` listed without reading it whole on every History page load.

Like the history table's listing (history/index.py), one os.scandir pass re-reads only files
whose (mtime_ns, size, inode) changed. A file's change time says when it was deleted: the move into
the trash sets it, and nothing else touches a trashed file.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from history.models import ConversationSummary
from history.stores.atomic import Unreadable
from history.stores.folder_scan import Parser, PerFolder, StatKey, conversation_files, stat_key


@dataclass(frozen=True, slots=True)
class Trashed:
    """One file in the trash: its name, when it was deleted (ns), and its summary if it can be read."""

    name: str
    deleted_ns: int
    summary: ConversationSummary | None


@dataclass
class TrashScan:
    """What the last listing of the trash did, so tests can see the cache working."""

    files: int = 0
    parsed: int = 0


class TrashListing:
    """The summaries of one trash folder's files, shared by every store object on that folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stats = TrashScan()
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[StatKey, ConversationSummary | None]] = {}

    def refresh(self, parse: Parser) -> list[Trashed]:
        """Every file in the trash, most recently deleted first; only changed files are parsed."""
        with self._lock:
            stats = TrashScan()
            found: list[Trashed] = []
            seen: dict[str, tuple[StatKey, ConversationSummary | None]] = {}
            for name, info in conversation_files(self.folder):
                key = stat_key(info)
                cached = self._entries.get(name)
                if cached is None or cached[0] != key:
                    cached = (key, self._parse(parse, name, info))
                    stats.parsed += 1
                seen[name] = cached
                found.append(Trashed(name, info.st_ctime_ns, cached[1]))
            self._entries = seen
            stats.files = len(found)
            self.stats = stats
        found.sort(key=lambda item: (item.deleted_ns, item.name), reverse=True)
        return found

    @staticmethod
    def _parse(parse: Parser, name: str, info: os.stat_result) -> ConversationSummary | None:
        if stat.S_ISDIR(info.st_mode):
            return None
        try:
            return parse(name, info)[0]
        except (Unreadable, OSError):
            return None  # restore() says what is wrong if the user picks it


_listings: PerFolder[TrashListing] = PerFolder(TrashListing)
trash_listing_for = _listings.get
forget_all = _listings.clear
