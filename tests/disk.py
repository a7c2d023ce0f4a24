"""A history folder on a small disk of its own (tmpfs), to fill it up or make it read-only as a real
disk does: root ignores file permissions, so only a real mount makes writes fail honestly."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"  # a hidden file: the history never lists or reads it


class SmallDisk:
    """A tmpfs mounted on a folder; fill(), free(), read_only() and writable() change it in place."""

    def __init__(self, folder: Path, size: str = "4m") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                       check=True)

    def fill(self) -> None:
        """Write until the disk says it is full."""
        with open(self.folder / FILLER, "ab", buffering=0) as handle:
            for size in (65536, 1):  # then byte by byte, for the last bytes of the last block
                try:
                    while handle.write(b"\0" * size):
                        pass
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / FILLER)

    def read_only(self) -> None:
        self._remount("ro")

    def writable(self) -> None:
        self._remount("rw")

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.folder)], check=False)

    def _remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.folder)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[SmallDisk]:
    """Mount a small disk on `folder` for a test; CI runs as root, so there it never skips."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk fault tests mount a tmpfs and must run as root in CI")
        pytest.skip("mounting a small disk needs root (CI runs these as root)")
    disk = SmallDisk(folder, size)
    try:
        yield disk
    finally:
        disk.unmount()
