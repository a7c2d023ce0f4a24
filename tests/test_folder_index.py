"""The JSON folder's derived index (.index/index.sqlite): deleted, stale, corrupt, of another version,
killed while written, in a folder that cannot hold it, trusted by a new process only while the folder is
unchanged. The files stay the truth; the index only ever speeds up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from history import index
from history.models import Conversation, make_message
from history.stores import folder_index
from history.stores.folder_index import INDEX_DIR, INDEX_NAME
from history.stores.json_store import JsonHistoryStore, encode
from tests.disks import small_disk

ROOT = Path(__file__).resolve().parent.parent


def conversation(n: int) -> Conversation:
    at = f"2026-02-01T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    return Conversation(id=f"c{n:05d}", created_at=at, updated_at=at, messages=[
        make_message("user", f"Question {n} about lisbon", created_at=at),
        make_message("assistant", f"Answer {n}", created_at=at, latency_ms=100 + n)])


def write_files(root: Path, count: int) -> None:
    """Conversation files as another process (or an older version) left them: no index."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (root / f"c{n:05d}.json").write_bytes(encode(conversation(n)))


def restarted(root: Path) -> JsonHistoryStore:
    folder_index.forget_all()  # as a new server process would start
    return JsonHistoryStore(root)


def settled(root: Path, monkeypatch) -> list:
    """The listing of a pass made once the folder's last change is older than its clock's grain (made
    short here), so the pass records the folder's key for the next process to trust."""
    monkeypatch.setattr(folder_index, "RACY_NS", 50_000_000)
    monkeypatch.setattr(folder_index, "CHECK_AFTER", 0.0)
    time.sleep(0.06)
    return JsonHistoryStore(root).list()


def checked(root: Path) -> None:
    """Until the check of every file started in a thread ends."""
    folder_index.index_for(root).checker.join()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "history"
    store = JsonHistoryStore(root)
    for n in range(3):
        store.create(conversation(n))
    store.list()
    return root


def test_a_new_process_answers_from_the_index_without_reading_a_file(folder, monkeypatch):
    listed = JsonHistoryStore(folder).list()
    store = restarted(folder)
    monkeypatch.setattr("history.stores.json_store.index_file", pytest.fail)
    assert store.list() == listed and [h.id for h in store.search("question 2")] == ["c00002"]
    assert len(store.insight_rows()) == 6
    assert store.last_scan.parsed == 0 and not store.last_scan.rebuilt


def test_files_changed_while_no_server_ran_are_read_again_and_only_they(folder):
    path = folder / "c00001.json"
    data = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps({**data, "title": "Changed offline"}), "utf-8")
    (folder / "c00000.json").unlink()
    store = restarted(folder)
    assert [s.title for s in store.list()][-1] == "Changed offline"
    assert store.last_scan.names == ["c00001.json"] and store.last_scan.removed == 1
    assert [h.id for h in store.search("offline")] == ["c00001"]


def test_a_new_process_answers_from_an_unchanged_folder_before_checking_its_files(folder, monkeypatch):
    listed = settled(folder, monkeypatch)
    checks = []
    monkeypatch.setattr(folder_index.FolderIndex, "_check_all", lambda *args: checks.append(args))
    store = restarted(folder)
    monkeypatch.setattr(os, "scandir", pytest.fail)
    monkeypatch.setattr("history.stores.json_store.index_file", pytest.fail)
    assert store.list() == listed
    assert store.last_scan.background and not store.last_scan.full and store.last_scan.parsed == 0
    assert [h.id for h in store.search("question 2")] == ["c00002"] and not store.last_scan.full
    assert len(checks) == 1  # every file is still checked, in a thread


def test_files_added_or_deleted_while_no_server_ran_are_seen_by_the_first_query(folder, monkeypatch):
    settled(folder, monkeypatch)
    (folder / "c00009.json").write_bytes(encode(conversation(9)))
    (folder / "c00000.json").unlink()
    store = restarted(folder)
    assert [s.id for s in store.list()] == ["c00009", "c00002", "c00001"]
    assert store.last_scan.full and store.last_scan.names == ["c00009.json"]


def test_a_file_edited_in_place_while_no_server_ran_is_seen_once_the_full_check_ends(folder, monkeypatch):
    settled(folder, monkeypatch)
    path = folder / "c00001.json"
    data = json.loads(path.read_text("utf-8"))
    data["messages"][0]["content"] = "Question about sintra"
    with open(path, "r+", encoding="utf-8") as file:  # in place: the folder's own key stays the same
        file.truncate()
        file.write(json.dumps(data))
    store = restarted(folder)
    store.count()
    assert store.last_scan.background
    checked(folder)
    assert [h.id for h in store.search("sintra")] == ["c00001"]


def test_closing_the_index_stops_a_check_still_waiting_to_start(folder, monkeypatch):
    settled(folder, monkeypatch)
    checks = []
    monkeypatch.setattr(folder_index.FolderIndex, "_check_all", lambda *args: checks.append(args))
    monkeypatch.setattr(folder_index, "CHECK_AFTER", 60.0)
    store = restarted(folder)
    assert store.count() == 3 and store.last_scan.background
    waiting = folder_index.index_for(folder)
    folder_index.forget_all()
    waiting.checker.join()  # at once: the check was cancelled, not waited for
    assert checks == []


def test_a_folder_changed_just_before_the_last_pass_is_passed_in_full_by_the_next_process(folder):
    store = restarted(folder)  # the fixture's files are younger than the folder clock's grain
    assert store.count() == 3 and store.last_scan.full


def test_a_background_check_that_fails_leaves_the_next_listing_to_check_every_file(folder, monkeypatch):
    settled(folder, monkeypatch)

    def failing(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(folder_index, "conversation_files", failing)
    store = restarted(folder)
    assert store.count() == 3 and store.last_scan.background
    checked(folder)
    monkeypatch.undo()
    assert store.count() == 3 and store.last_scan.full


def test_a_deleted_index_is_built_again_from_the_files(folder):
    listed = JsonHistoryStore(folder).list()
    folder_index.forget_all()
    shutil.rmtree(folder / INDEX_DIR)
    store = JsonHistoryStore(folder)
    assert store.list() == listed
    assert store.last_scan.rebuilt and store.last_scan.parsed == 3
    assert (folder / INDEX_NAME).is_file()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty_tables", "other_version"])
def test_a_corrupt_or_foreign_index_is_built_again(folder, damage):
    listed = JsonHistoryStore(folder).list()
    folder_index.forget_all()  # closes it: SQLite folds the -wal file into the database
    path = folder / INDEX_NAME
    if damage == "garbage":
        path.write_bytes(b"not a database at all" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    elif damage == "empty_tables":
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE insight_rows")
    else:
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA user_version = {index.VERSION + 1}")
    store = JsonHistoryStore(folder)
    assert store.list() == listed
    assert store.last_scan.rebuilt and store.last_scan.parsed == 3
    assert [h.id for h in store.search("lisbon", 1)] == ["c00002"] and len(store.insight_rows()) == 6
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_index_is_neither_a_conversation_nor_an_unreadable_file(folder):
    store = JsonHistoryStore(folder)
    assert store.count() == 3 and store.unreadable() == []


def test_an_index_that_is_a_symbolic_link_is_never_followed(folder, tmp_path):
    folder_index.forget_all()
    elsewhere = tmp_path / "elsewhere.sqlite"
    (folder / INDEX_NAME).rename(elsewhere)
    for name in os.listdir(folder / INDEX_DIR):
        os.unlink(folder / INDEX_DIR / name)
    (folder / INDEX_NAME).symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    store = JsonHistoryStore(folder)
    assert len(store.list()) == 3 and store.last_scan.in_memory
    assert elsewhere.read_bytes() == before


def test_an_index_folder_that_is_a_symbolic_link_is_never_followed(folder, tmp_path):
    folder_index.forget_all()
    shutil.rmtree(folder / INDEX_DIR)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / INDEX_DIR).symlink_to(elsewhere)
    store = JsonHistoryStore(folder)
    assert len(store.list()) == 3 and store.last_scan.in_memory
    assert list(elsewhere.iterdir()) == []


def test_a_read_only_folder_keeps_the_index_in_memory_and_still_lists_and_searches(tmp_path, monkeypatch):
    with small_disk(tmp_path / "disk") as disk:
        root = disk.path / "history"
        write_files(root, 4)  # files from elsewhere, never indexed
        disk.read_only()
        store = restarted(root)
        assert [s.id for s in store.list()] == ["c00003", "c00002", "c00001", "c00000"]
        assert store.last_scan.in_memory and not (root / INDEX_NAME).exists()
        assert [h.id for h in store.search("question 1")] == ["c00001"]
        assert len(store.insight_rows()) == 8
        monkeypatch.setattr(folder_index, "FULL_PASS_EVERY", 0.0)  # no file for a check in a thread to read
        assert store.count() == 4 and store.last_scan.full and not store.last_scan.background


def test_a_full_disk_keeps_the_index_in_memory_and_saves_still_say_the_disk_is_full(tmp_path):
    with small_disk(tmp_path / "disk", size="4m") as disk:
        root = disk.path / "history"
        write_files(root, 20)
        disk.fill()
        store = restarted(root)
        assert store.count() == 20 and store.last_scan.in_memory
        disk.free()
        store.create(conversation(99))
        assert store.count() == 21


BUILD = """
import sys
from history.stores.json_store import JsonHistoryStore
print("building", flush=True)
JsonHistoryStore(sys.argv[1]).list()
print("built", flush=True)
"""


def committed(path: Path) -> int:
    """How many files a reader sees indexed now (0 before the first batch commits)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.timeout(120)
def test_a_server_killed_while_building_the_index_leaves_it_consistent_and_the_next_one_finishes(tmp_path):
    root = tmp_path / "history"
    total = 6 * folder_index.BATCH
    write_files(root, total)
    command = [sys.executable, "-c", BUILD, str(root)]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "building"
    deadline = time.monotonic() + 60
    while committed(root / INDEX_NAME) < folder_index.BATCH and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(child.pid, signal.SIGKILL)  # mid-build: some batches committed, one perhaps half written
    child.wait()
    done = committed(root / INDEX_NAME)
    assert folder_index.BATCH <= done < total, "the kill should land while the index is being built"

    store = restarted(root)
    assert store.count() == total
    assert store.last_scan.parsed == total - done  # what was committed is kept, the rest is read
    assert [h.id for h in store.search('"question 1234"')] == ["c01234"]
    with sqlite3.connect(root / INDEX_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_big_build_reports_its_progress(tmp_path, monkeypatch):
    root = tmp_path / "history"
    write_files(root, 30)
    monkeypatch.setattr(folder_index, "BATCH", 10)
    seen = []
    original = index.write

    def watching(connection, entries, gone=(), folder=None):
        original(connection, entries, gone, folder)
        if entries:
            seen.append(folder_index.index_for(root).progress)

    monkeypatch.setattr(index, "write", watching)
    store = restarted(root)
    assert store.progress() is None and store.count() == 30
    assert seen == [(0, 30), (10, 30), (20, 30)] and store.progress() is None


def test_another_process_indexing_a_file_saves_this_one_reading_it(folder):
    store = JsonHistoryStore(folder)
    store.list()
    script = ("import sys; from history.stores.json_store import JsonHistoryStore;"
              " from tests.test_folder_index import conversation;"
              " JsonHistoryStore(sys.argv[1]).create(conversation(7))")
    subprocess.run([sys.executable, "-c", script, str(folder)], cwd=ROOT, capture_output=True, check=True)
    assert store.latest().id == "c00007" and store.last_scan.parsed == 0


def test_an_index_deleted_or_moved_while_a_server_has_it_open_is_never_written_again(folder, tmp_path):
    store = JsonHistoryStore(folder)
    assert store.count() == 3
    moved = tmp_path / "moved"
    folder.rename(moved)  # a sign-in moves an old history folder to its new name
    assert store.count() == 0  # the old name is empty now
    assert [s.id for s in JsonHistoryStore(moved).list()] == ["c00002", "c00001", "c00000"]
    shutil.rmtree(moved / INDEX_DIR)
    again = JsonHistoryStore(moved)
    assert again.count() == 3 and again.last_scan.rebuilt and (moved / INDEX_NAME).is_file()


def test_a_write_that_fails_halfway_leaves_the_index_as_it_was(tmp_path):
    connection = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    index.create(connection)
    index.write(connection, [index.Entry("c00001.json", (1, 2, 3), conversation(1))])
    connection.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON insight_days BEGIN SELECT RAISE(ABORT, 'disk I/O'); END")
    with pytest.raises(sqlite3.IntegrityError):
        index.write(connection, [index.Entry("c00002.json", (4, 5, 6), conversation(2))], ["c00001.json"])
    assert index.keys(connection) == {"c00001.json": (1, 2, 3)}
    assert [hit.id for hit in index.search(connection, "lisbon", index.Scope())] == ["c00001"]
    assert connection.execute("SELECT count(*) FROM insight_rows").fetchone() == (2,)
