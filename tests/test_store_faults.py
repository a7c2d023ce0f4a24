"""Faults under the history stores: a full disk, a read-only folder, a lock held elsewhere, and a
database that restarts, stops or freezes. Each store call fails with one of history/errors.py's
exceptions, whose message names the cause and what to do, within a few seconds, and changes nothing
saved; once the fault is gone the same call works.

The disks are real (tests/disks.py: a tmpfs of the test's own, as root).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from history import atomic, json_store
from history.errors import HistoryBusy, HistoryError, HistoryFull, HistoryReadOnly
from history.importers import ALREADY_HERE, import_file
from history.json_store import JsonHistoryStore
from history.models import Conversation
from tests.disks import can_fill_disks, small_disk, snapshot

ASKED, ANSWERED = "2024-05-01T10:00:00.000Z", "2024-05-01T10:00:05.000Z"
FEW_SECONDS = 10  # the longest any fault may hold a call up


def message(role: str, text: str, created_at: str | None = None) -> dict:
    return {"role": role, "content": text, "created_at": created_at or "2024-05-02T09:00:00.000Z"}


def seed(store) -> None:
    """'kept' (a question and its answer) and 'trashed' (in the trash)."""
    store.create(Conversation(id="kept", model="m1"))
    store.append("kept", message("user", "question", ASKED), message("assistant", "answer", ANSWERED))
    store.create(Conversation(id="trashed", messages=[message("user", "old")]))
    store.delete("trashed")


def contents(store, conversation_id: str = "kept") -> list[str]:
    return [m["content"] for m in store.get(conversation_id).messages]


IMPORTED = json.dumps(Conversation(id="imported", messages=[message("user", "from a file")]).to_dict())

# Every write a store offers, each on a conversation seed() made (or a new one), and the id it locks.
WRITES: dict[str, tuple[str, Callable]] = {
    "create": ("new", lambda s: s.create(Conversation(id="new", messages=[message("user", "new")]))),
    "append": ("kept", lambda s: s.append("kept", message("user", "one more"))),
    "update": ("kept", lambda s: s.update("kept", title="Renamed", temperature=0.2)),
    "replace_tail": (
        "kept",
        lambda s: s.replace_tail("kept", 1, message("assistant", "regenerated"), expected_count=2),
    ),
    "update_message": ("kept", lambda s: s.update_message("kept", 1, ANSWERED, feedback="up")),
    "delete": ("kept", lambda s: s.delete("kept")),
    "restore": ("trashed", lambda s: s.restore("trashed")),
    "import": ("imported", lambda s: import_file(s, "conversation.json", IMPORTED.encode())),
}
# Every read, for the database (a folder's reads need no disk space and work when it is read-only).
READS: dict[str, Callable] = {
    "get": lambda s: s.get("kept"),
    "get_many": lambda s: s.get_many(["kept"]),
    "list": lambda s: s.list(),
    "exists": lambda s: s.exists("kept"),
    "revisions": lambda s: s.revisions(),
    "deleted": lambda s: s.deleted(),
    "get_deleted": lambda s: s.get_deleted("trashed"),
}
WRITES_NEEDING_SPACE = [name for name in WRITES if name not in ("delete", "restore")]


def assert_names_the_cause(error: HistoryError, *words: str) -> None:
    assert error.message == str(error)
    for word in words:
        assert word in error.message, f"{word!r} not in: {error.message}"


# The JSON folder on a full disk


needs_a_full_disk = pytest.mark.skipif(
    not can_fill_disks(), reason="a full disk needs root (a tmpfs); CI runs as root and never skips this"
)


@needs_a_full_disk
@pytest.mark.parametrize("operation", WRITES_NEEDING_SPACE)
def test_a_full_disk_refuses_each_write_saying_so_and_changes_nothing(tmp_path, operation):
    with small_disk(tmp_path / "disk") as disk:
        store = JsonHistoryStore(disk.path / "history")
        seed(store)
        before = snapshot(store.root, skip=(".locks",))  # a new id's empty lock file needs no space
        disk.fill()
        with pytest.raises(HistoryFull) as caught:
            WRITES[operation][1](store)
        assert_names_the_cause(caught.value, "disk", "full", "Free some space", "CHATBOT_HISTORY_DIR")
        assert snapshot(store.root, skip=(".locks",)) == before  # no temp file left, nothing changed
        assert contents(store) == ["question", "answer"] and [s.id for s in store.list()] == ["kept"]
        disk.free()
        WRITES[operation][1](store)  # with room again, the same call works


@needs_a_full_disk
def test_on_a_full_disk_delete_and_restore_still_work_they_only_rename(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        store = JsonHistoryStore(disk.path / "history")
        seed(store)
        disk.fill()
        store.delete("kept")
        store.restore("trashed")
        store.restore("kept")
        assert contents(store) == ["question", "answer"] and contents(store, "trashed") == ["old"]


@needs_a_full_disk
def test_an_import_that_fills_the_disk_says_how_far_it_got_and_importing_again_adds_the_rest(tmp_path):
    two = [
        Conversation(id="small", title="Small", messages=[message("user", "fits")]).to_dict(),
        Conversation(id="large", title="Large", messages=[message("user", "x" * 400_000)]).to_dict(),
    ]
    data = json.dumps(two).encode()
    with small_disk(tmp_path / "disk") as disk:
        store = JsonHistoryStore(disk.path / "history")
        seed(store)
        disk.fill(leave=150_000)
        with pytest.raises(HistoryFull) as caught:
            import_file(store, "two.json", data)
        assert_names_the_cause(caught.value, "Imported 1 of 2", "full", "Free some space", "again")
        assert store.exists("small") and not store.exists("large")
        disk.free()
        report = import_file(store, "two.json", data)
        assert [row[0] for row in report.imported] == ["large"]
        assert report.skipped == [("Small", ALREADY_HERE)]


# The JSON folder read-only


@pytest.mark.parametrize("operation", list(WRITES))
def test_a_read_only_folder_refuses_each_write_saying_so_and_still_reads(tmp_path, operation):
    with small_disk(tmp_path / "disk") as disk:
        store = JsonHistoryStore(disk.path / "history")
        seed(store)
        before = snapshot(store.root)
        disk.read_only()
        with pytest.raises(HistoryReadOnly) as caught:
            WRITES[operation][1](store)
        assert_names_the_cause(caught.value, str(store.root), "read-only", "CHATBOT_HISTORY_DIR")
        assert snapshot(store.root) == before
        assert contents(store) == ["question", "answer"] and [s.id for s in store.deleted()] == ["trashed"]
        disk.writable()
        WRITES[operation][1](store)


# The JSON folder with a conversation's lock held by another process

HOLD_LOCK = (
    "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
    "print('locked', flush=True); sys.stdin.read()"
)


@contextlib.contextmanager
def locked_elsewhere(store: JsonHistoryStore, conversation_id: str) -> Iterator[None]:
    """Another process holds the conversation's lock (as another window's save would) until the end."""
    lock = store.root / json_store.LOCKS_DIR / f"{conversation_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_lock_held_by_another_process_makes_a_save_busy_within_seconds_then_it_saves(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    seed(store)
    before = store.path_for("kept").read_bytes()
    with locked_elsewhere(store, "kept"):
        started = time.monotonic()
        with pytest.raises(HistoryBusy) as caught:
            store.append("kept", message("user", "waits"))
        assert time.monotonic() - started < FEW_SECONDS
        assert_names_the_cause(caught.value, "Another window is saving this conversation", "try again")
        assert store.path_for("kept").read_bytes() == before
    store.append("kept", message("user", "after"))
    assert contents(store) == ["question", "answer", "after"]


@pytest.mark.parametrize("operation", list(WRITES))
def test_every_write_is_busy_while_another_process_holds_the_lock(tmp_path, monkeypatch, operation):
    monkeypatch.setattr(atomic, "LOCK_TIMEOUT", 0.3)
    store = JsonHistoryStore(tmp_path / "history")
    seed(store)
    locked_id, write = WRITES[operation]
    with locked_elsewhere(store, locked_id):
        before = snapshot(store.root, skip=(".search-index",))  # a cache, written by the import's search
        with pytest.raises(HistoryBusy):
            write(store)
        assert snapshot(store.root, skip=(".search-index",)) == before
    write(store)
