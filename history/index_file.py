"""A hidden cache file in a history folder: read once per process, rewritten atomically now and then.

The search text (history/search_index.py) and the Insights rows (history/insights_cache.py) each keep
one, so a restarted server does not parse every conversation again. Such a file is only ever a cache:
a missing, truncated, corrupt or other-version one is ignored (the caller rebuilds from the
conversation files), and a folder it cannot be written to still works, just without the speed-up.
Its name starts with '.', so the listing never takes it for a conversation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from history.stores.atomic import Unreadable, read_regular_file, write_atomic

T = TypeVar("T")
# What a decoder may raise on a damaged or foreign file; a decoder turns any other fault into one.
FAULTS: tuple[type[Exception], ...] = (
    OSError,
    Unreadable,
    ValueError,  # includes UnicodeError and json.JSONDecodeError
    TypeError,
    LookupError,
    AttributeError,
    RecursionError,
)


class IndexFile:
    """One hidden file and when it was last written. Callers hold their own lock around it."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.unsaved = 0  # changes since the file was last written
        self.saved_at = time.monotonic()

    def load(self, decode: Callable[[bytes], T], faults: tuple[type[Exception], ...] = ()) -> T | None:
        """decode(the file's bytes), or None if the file is missing or anything about it is wrong."""
        try:
            raw, _ = read_regular_file(self.path, self.max_bytes)
            return decode(raw)
        except FAULTS + faults:
            return None

    def save_if_due(self, changes: int, encode: Callable[[], bytes], after: int, interval: float) -> bool:
        """Count `changes`; rewrite the file if this call made `after` of them or `interval` s have
        passed since the last write (and anything changed). Never on every call: it costs a full write."""
        self.unsaved += changes
        now = time.monotonic()
        due = changes >= after or now - self.saved_at >= interval
        if not self.unsaved or not due or not self.path.parent.is_dir():
            return False
        try:
            write_atomic(self.path, encode())
        except OSError:
            return False  # e.g. a read-only folder
        self.unsaved = 0
        self.saved_at = now
        return True
