"""Which files of a watched folder changed since the folder's index last looked, from Linux inotify.

The folder index (history/stores/folder_index.py) then stats only those names instead of every file
on every query. One inotify instance serves every folder of the process (the kernel allows few
instances per user, and many watches); its events are read without blocking when a folder asks, so
no thread runs. Whenever events may have been lost (the kernel's queue overflowed, the folder was
moved or deleted, inotify is missing, as on macOS) `changed()` says so with None and the index
makes its full directory pass, as it does without a watch. inotify does not see every change: one
made through another hard link, on a network file system by another machine, or through a shared
memory map; the index's periodic full pass covers those.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_MODIFY, _ATTRIB, _CLOSE_WRITE = 0x2, 0x4, 0x8
_MOVED_FROM, _MOVED_TO, _CREATE, _DELETE = 0x40, 0x80, 0x100, 0x200
_DELETE_SELF, _MOVE_SELF, _UNMOUNT, _OVERFLOW, _IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
_ONLYDIR, _DONT_FOLLOW = 0x01000000, 0x02000000
_NAMES = _MODIFY | _ATTRIB | _CLOSE_WRITE | _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE
_WATCH = _NAMES | _DELETE_SELF | _MOVE_SELF | _ONLYDIR | _DONT_FOLLOW
_GONE = _DELETE_SELF | _MOVE_SELF | _UNMOUNT | _IGNORED  # the watch no longer sees this folder
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


class _Inotify:
    """The process's one inotify instance: a watch per folder, and the names each one saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._fd: int | None = None
        self._libc: ctypes.CDLL | None = None
        self._failed = False  # inotify is missing or refused once: never try again in this process
        self._names: dict[Path, set[str] | None] = {}  # per folder: names seen, or None once some were lost
        self._roots: dict[int, Path] = {}  # wd: its folder

    def watch(self, root: Path) -> None:
        """Begin (or begin again) to collect root's changes: what came before is the caller's to find."""
        with self.lock:
            self._names.pop(root, None)
            if self._failed or not self._start():
                return
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(root), _WATCH)
            if wd < 0:
                log.debug("Not watching %s: %s", root, os.strerror(ctypes.get_errno()))
                return
            self._read()  # events queued for an earlier watch of it are the caller's to find, not news
            if self._roots.get(wd, root) != root:  # the same folder by another path: that one loses them
                self._names[self._roots[wd]] = None
            self._roots[wd], self._names[root] = root, set()

    def changed(self, root: Path) -> set[str] | None:
        """Names created, changed, moved or deleted in root since the last call or watch(); None if
        some may have been missed (or root is not watched)."""
        with self.lock:
            if self._fd is not None:
                self._read()
            names = self._names.get(root)
            if names is not None:
                self._names[root] = set()
            return names

    def _start(self) -> bool:
        if self._fd is not None:
            return True
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):  # no libc by that name, or no inotify in it
            fd = -1
        if fd < 0:
            self._failed = True
            log.info("No inotify here: the history folder is checked file by file on every page")
            return False
        self._fd = fd
        return True

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                name = data[offset + _HEADER.size : offset + _HEADER.size + length].rstrip(b"\0")
                offset += _HEADER.size + length
                root = self._roots.get(wd)
                if mask & _OVERFLOW:
                    self._names = dict.fromkeys(self._names)  # every folder may have missed some
                elif root in self._names and mask & _GONE:
                    self._names[root] = None
                elif (names := self._names.get(root)) is not None and mask & _NAMES:
                    names.add(os.fsdecode(name))


inotify = _Inotify()  # read through the module at each call, so a test can put a fresh one in its place
