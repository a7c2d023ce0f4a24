"""A small disk of its own for a history folder, to make writes really fail: full, or read-only.

As root (CI), a tmpfs is mounted in the test's folder: filled to the last byte, or remounted read-only.
Otherwise a read-only folder is made with permission bits, which bind everyone but root; a full disk
then has no honest stand-in, so those tests are skipped, but never under CI.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from history.stores import folder_index

AS_ROOT = os.geteuid() == 0
_CHUNK = 65536


def can_fill_disks() -> bool:
    """Whether a full disk can be made here; under CI (root) it must be, so it is never skipped there."""
    return AS_ROOT or bool(os.environ.get("CI"))


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


class SmallDisk:
    """A folder on a disk of its own; fill() and read_only() make every write to it fail."""

    def __init__(self, path: Path, size: str = "2m") -> None:
        self.path = path
        self.size = size
        self.mounted = False
        self._fillers: list[Path] = []
        self._locked: list[Path] = []

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if AS_ROOT:
            _run("mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path))
            self.mounted = True

    def unmount(self) -> None:
        self.writable()
        folder_index.forget_all()  # its index database is held open, as a running server holds it
        if self.mounted:
            _run("umount", str(self.path))
            self.mounted = False

    def free_bytes(self) -> int:
        info = os.statvfs(self.path)
        return info.f_bavail * info.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Write a file until about `leave` bytes are free; with 0, checks that a 1-byte write fails."""
        assert self.mounted, "a full disk needs root (a tmpfs of its own)"
        filler = self.path / f"filler-{len(self._fillers)}"
        self._fillers.append(filler)
        with open(filler, "wb", buffering=0) as handle:
            while self.free_bytes() > leave:
                try:
                    handle.write(b"\0" * min(_CHUNK, self.free_bytes() - leave))
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    break
        if leave == 0:
            probe = self.path / "probe"
            with pytest.raises(OSError) as full, open(probe, "wb", buffering=0) as handle:
                handle.write(b"x")
            probe.unlink()
            assert full.value.errno == errno.ENOSPC

    def free(self) -> None:
        for filler in self._fillers:
            filler.unlink(missing_ok=True)
        self._fillers.clear()

    def read_only(self) -> None:
        """Remount read-only (root), or take the write bits off every folder in it (anyone else)."""
        folder_index.forget_all()  # a disk with files open for writing cannot be remounted read-only
        if self.mounted:
            _run("mount", "-o", "remount,ro", str(self.path))
            return
        for folder in [self.path, *(p for p in self.path.rglob("*") if p.is_dir())]:
            folder.chmod(folder.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            self._locked.append(folder)

    def writable(self) -> None:
        if self.mounted:
            _run("mount", "-o", "remount,rw", str(self.path))
        for folder in self._locked:
            folder.chmod(folder.stat().st_mode | stat.S_IWUSR)
        self._locked.clear()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[SmallDisk]:
    disk = SmallDisk(path, size)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()


def snapshot(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes | None]:
    """Every file's bytes (None for a folder) under `folder`, by relative path, hidden ones included
    except the derived index, which SQLite itself tidies (a closed database leaves no -wal file)."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative.split("/")[0] in {*skip, folder_index.INDEX_DIR}:
            continue
        found[relative] = None if path.is_dir() else path.read_bytes()
    return found
