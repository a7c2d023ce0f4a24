"""The folder index checks only the files inotify saw change, and falls back to a full pass whenever
that could miss something: lost events, a folder moved away, no inotify, or time since the last one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from history.stores import folder_index, folder_watch
from history.stores.json_store import JsonHistoryStore, encode
from tests.test_folder_index import checked, conversation, restarted, write_files


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    root = tmp_path / "history"
    write_files(root, 5)
    store = restarted(root)
    assert store.count() == 5 and store.last_scan.full
    return store


def edit_by_hand(root: Path, n: int, text: str) -> None:
    """Rewrite c<n>'s file in place, as an editor or a script would, bypassing the store."""
    changed = conversation(n)
    changed.messages[0]["content"] = text
    with open(root / f"c{n:05d}.json", "r+b") as file:
        file.truncate()
        file.write(encode(changed))


def test_an_unchanged_folder_is_answered_without_a_directory_pass(store, monkeypatch):
    monkeypatch.setattr(os, "scandir", pytest.fail)
    assert [s.id for s in store.page(2)] == ["c00004", "c00003"]
    assert not store.last_scan.full and store.last_scan.parsed == 0


def test_a_file_edited_added_or_deleted_by_hand_is_seen_by_the_next_query(store):
    edit_by_hand(store.root, 2, "Question about porto")
    assert [hit.id for hit in store.search("porto")] == ["c00002"]
    assert not store.last_scan.full and store.last_scan.names == ["c00002.json"]
    (store.root / "c00099.json").write_bytes(encode(conversation(99)))
    (store.root / "c00000.json").unlink()
    assert store.count() == 5 and store.exists("c00099")
    assert not store.last_scan.full and store.last_scan.removed == 1


def test_the_stores_own_saves_are_not_read_back(store):
    store.append("c00001", conversation(1).messages[0])
    store.count()
    assert not store.last_scan.full and store.last_scan.parsed == 0


def test_lost_events_mean_a_full_pass(store):
    a, b = store.root / "c00000.json", store.root / "c00001.json"
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for n in range(limit // 2 + 10):  # alternating, so the kernel cannot merge them: its queue overflows
        os.utime(a, ns=(n, n))
        os.utime(b, ns=(n, n))
    edit_by_hand(store.root, 3, "Question about faro")
    assert [hit.id for hit in store.search("faro")] == ["c00003"]
    assert store.last_scan.full
    assert sorted(store.last_scan.names) == ["c00000.json", "c00001.json", "c00003.json"]


def test_a_folder_moved_away_and_replaced_is_passed_in_full(store, tmp_path):
    store.root.rename(tmp_path / "elsewhere")
    write_files(store.root, 2)
    assert store.count() == 2 and store.last_scan.full
    edit_by_hand(store.root, 1, "Question about braga")
    assert [hit.id for hit in store.search("braga")] == ["c00001"] and not store.last_scan.full


def unseen_edit(root: Path, n: int, text: str) -> None:
    """An edit inotify cannot see (as from another machine over NFS): its events are discarded."""
    edit_by_hand(root, n, text)
    folder_watch.inotify.changed(root)


def check_thread_only_scans(monkeypatch) -> list[threading.Thread]:
    """Records the threads that list the folder, so a test can see no query waits for a full pass."""
    callers, real = [], os.scandir

    def scandir(path):
        callers.append(threading.current_thread())
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return callers


def test_every_file_is_checked_in_the_background_every_few_seconds_for_what_inotify_cannot_see(
        store, monkeypatch):
    monkeypatch.setattr(folder_index, "FULL_PASS_EVERY", 0.0)
    monkeypatch.setattr(folder_index, "CHECK_AFTER", 0.0)
    callers = check_thread_only_scans(monkeypatch)
    unseen_edit(store.root, 2, "Question about coimbra")
    assert store.count() == 5
    assert not store.last_scan.full and store.last_scan.background and store.last_scan.parsed == 0
    checked(store.root)
    monkeypatch.setattr(folder_index, "FULL_PASS_EVERY", 3600.0)
    assert [hit.id for hit in store.search("coimbra")] == ["c00002"] and not store.last_scan.full
    assert callers and threading.current_thread() not in callers


def test_only_one_periodic_check_runs_at_a_time(store, monkeypatch):
    monkeypatch.setattr(folder_index, "FULL_PASS_EVERY", 0.0)
    monkeypatch.setattr(folder_index, "CHECK_AFTER", 0.0)
    release, real = threading.Event(), folder_index.conversation_files

    def slow(root, names):
        if names is None:  # every file: the check in a thread
            release.wait(30)
        return real(root, names)

    monkeypatch.setattr(folder_index, "conversation_files", slow)
    store.count()
    assert store.last_scan.background
    store.count()  # the first check still runs: no second one, and this query does not wait for it
    assert not store.last_scan.background and not store.last_scan.full
    release.set()
    checked(store.root)
    store.count()
    assert store.last_scan.background


def test_a_periodic_check_that_fails_leaves_the_next_query_to_check_every_file(store, monkeypatch):
    monkeypatch.setattr(folder_index, "FULL_PASS_EVERY", 0.0)
    monkeypatch.setattr(folder_index, "CHECK_AFTER", 0.0)
    real = folder_index.conversation_files

    def failing(root, names):
        if names is None:
            raise OSError(5, "Input/output error")
        return real(root, names)

    monkeypatch.setattr(folder_index, "conversation_files", failing)
    unseen_edit(store.root, 3, "Question about viseu")
    assert store.count() == 5 and store.last_scan.background
    checked(store.root)
    monkeypatch.undo()
    assert [hit.id for hit in store.search("viseu")] == ["c00003"] and store.last_scan.full


def test_without_inotify_every_query_is_a_full_pass_and_sees_every_change(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_watch, "inotify", folder_watch._Inotify())
    monkeypatch.setattr(folder_watch.inotify, "_failed", True)
    root = tmp_path / "history"
    write_files(root, 3)
    store = restarted(root)
    assert store.count() == 3
    edit_by_hand(root, 1, "Question about evora")
    assert [hit.id for hit in store.search("evora")] == ["c00001"] and store.last_scan.full



def test_a_pass_that_fails_leaves_the_next_one_to_check_everything(store, monkeypatch):
    from history.errors import HistoryError
    from history.stores import json_store

    edit_by_hand(store.root, 4, "Question about tavira")
    real = json_store.index_file

    def failing(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(json_store, "index_file", failing)
    with pytest.raises((HistoryError, OSError)):
        store.search("tavira")
    monkeypatch.setattr(json_store, "index_file", real)
    assert [hit.id for hit in store.search("tavira")] == ["c00004"]
