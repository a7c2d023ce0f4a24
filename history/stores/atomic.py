"""File-system rules every store operation obeys: crash-safe writes, no-follow reads, locks, private modes."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from history.errors import HistoryBusy

# Seconds a save waits for another window's save of the same conversation (each takes milliseconds):
# past it the user is told to try again, rather than watching a page that hangs.
LOCK_TIMEOUT = 5.0
BUSY = "Another window is saving this conversation right now; try again in a moment."
_POLL_INTERVAL = 0.002
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = (
    os.O_RDONLY
    | O_NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO named like a conversation must not hang the app
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# Conversations are private: folders only the app's user can enter, files only it can read (mkstemp
# already makes 0600 files). The modes are set explicitly, so a server's umask (often 022) cannot widen them.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_SYMLINK = "the file is a symbolic link, and links are never followed"
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class Unreadable(Exception):
    """A stored file that must be reported to the user, not opened further or overwritten."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_regular(info: os.stat_result, max_bytes: int) -> None:
    """Unreadable unless the entry is a regular file (not a link) of at most `max_bytes`."""
    if stat.S_ISLNK(info.st_mode):
        raise Unreadable(_SYMLINK)
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable("it is not a regular file")
    if info.st_size > max_bytes:
        raise Unreadable(_too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"the file is larger than {max_bytes // 2**20} MB"


def read_regular_file(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """Read a whole regular file without following a symlink at `path`; FileNotFoundError passes."""
    if not O_NOFOLLOW and os.path.islink(path):
        raise Unreadable(_SYMLINK)
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Unreadable(_SYMLINK) from None
        raise Unreadable(f"the file could not be opened ({error.strerror})") from None
    try:  # check before os.fdopen, which raises IsADirectoryError for a folder named like a file
        info = os.fstat(fd)
        check_regular(info, max_bytes)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after fstat
        raise Unreadable(_too_large(max_bytes))
    return data, info


def write_atomic(path: Path, data: bytes) -> os.stat_result:
    """Replace `path` so readers and crashes see the old or the new content, never a mix.

    Returns the written file's stat: a rename keeps mtime, size and inode, so caches can
    recognise the file later without reading it.
    """
    if os.path.islink(path):
        raise PermissionError(errno.EPERM, "refusing to replace a symbolic link", str(path))
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            written = os.fstat(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)
    return written


def fsync_dir(directory: Path) -> None:
    """Make a rename durable; best effort, since some platforms cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. EINVAL on file systems without directory fsync
    finally:
        os.close(fd)


def private_dirs(folder: Path) -> None:
    """Make `folder` and any missing parents, each 0700 whatever the umask; existing ones are left."""
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            continue  # another thread or process made it meanwhile
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is narrowed by the umask, never widened; be exact


def tighten(folder: Path) -> None:
    """Take group and other access off a folder of ours that an older version left open (0755); best
    effort, so a read-only disk still reads. Anything not a folder, or someone else's, is left alone."""
    if os.name != "posix":
        return  # Windows folders have ACLs, not these bits
    try:
        info = os.lstat(folder)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.chmod(folder, stat.S_IMODE(info.st_mode) & 0o700)
    except OSError:
        return


def _thread_lock(key: str) -> threading.Lock:
    """One lock per path, so threads hand over quickly instead of polling the file lock."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


@contextlib.contextmanager
def exclusive(lock_path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold `lock_path` against other threads and processes (the OS frees it if one dies).

    Raises HistoryBusy if it stays held for `timeout` seconds (LOCK_TIMEOUT unless given).
    """
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout  # one wait for both locks, not one each
    private_dirs(lock_path.parent)
    local = _thread_lock(str(lock_path))
    if not local.acquire(timeout=timeout):
        raise HistoryBusy(BUSY)
    try:
        wait = max(0.0, deadline - time.monotonic())  # 0: try once
        file_lock = FileLock(lock_path, timeout=wait, mode=PRIVATE_FILE)
        try:
            file_lock.acquire(poll_interval=_POLL_INTERVAL)  # an acquire() argument in every filelock 3.x
        except Timeout:
            raise HistoryBusy(BUSY) from None
        try:
            yield
        finally:
            file_lock.release()
    finally:
        local.release()
