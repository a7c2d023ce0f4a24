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
        self._folders: dict[int, set[str] | None] = {}  # wd: names seen, or None once events were lost
        self._roots: dict[int, Path] = {}  # wd: its folder, so a folder never takes another's names

    def watch(self, root: Path) -> int | None:
        """A new watch of root (its names seen from now on), or None where inotify cannot watch it."""
        with self.lock:
            if self._failed or not self._start():
                return None
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(root), _WATCH)
            if wd < 0:
                log.debug("Not watching %s: %s", root, os.strerror(ctypes.get_errno()))
                return None
            self._read()  # events queued for an earlier watch of it are the caller's to find, not news
            self._folders[wd], self._roots[wd] = set(), root  # watching a folder again starts afresh
            return wd

    def take(self, wd: int, root: Path) -> set[str] | None:
        """The names changed in root since the last take, or None if some may have been missed."""
        with self.lock:
            self._read()
            names = self._folders.get(wd)
            if names is None or self._roots.get(wd) != root:
                return None
            self._folders[wd] = set()
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
                if mask & _OVERFLOW:
                    self._folders = dict.fromkeys(self._folders)  # every folder may have missed some
                elif wd in self._folders and mask & _GONE:
                    self._folders[wd] = None
                elif (names := self._folders.get(wd)) is not None and mask & _NAMES:
                    names.add(os.fsdecode(name))


_inotify = _Inotify()


class FolderWatch:
    """The changes to one folder's files since the last changed(); None when they are not known."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._wd: int | None = None

    def start(self) -> None:
        """Begin (or begin again) to collect changes: what came before is the caller's to find."""
        self._wd = _inotify.watch(self.root)

    def changed(self) -> set[str] | None:
        """Names created, changed, moved or deleted since the last call or start(); None if unknown."""
        if self._wd is None:
            return None
        names = _inotify.take(self._wd, self.root)
        if names is None:
            self._wd = None
        return names
