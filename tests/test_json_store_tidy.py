"""The JSON folder keeps to itself and cleans up: private modes, a bounded set of lock files, a trash
listing that is not read again on every page load.

The trash's age limit and "Delete forever", which every store has, are in tests/test_store_contract.py.
"""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from history.models import Conversation, make_message
from history.stores import json_store
from history.stores.backend import open_store
from history.stores.json_store import JsonHistoryStore


@pytest.fixture
def wide_umask():
    """The umask most servers run with (Streamlit Community Cloud's too): new files world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def new_conversation(store, conversation_id: str, text: str = "hello") -> None:
    store.create(Conversation(id=conversation_id, model="m"))
    store.append(conversation_id, make_message("user", text))


def modes(base: Path) -> dict[str, int]:
    """Each folder's and file's permission bits under base, by relative path ('.' is base)."""
    found = {".": stat.S_IMODE(base.lstat().st_mode)}
    for path in base.rglob("*"):
        found[path.relative_to(base).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_every_folder_the_store_makes_is_0700_and_every_file_0600(tmp_path, wide_umask):
    base = tmp_path / "data" / "history"
    for owner in ("", "users/3f2a"):
        store = open_store(base, owner)
        for conversation_id in ("chat-1", "chat-2"):
            new_conversation(store, conversation_id)
        store.delete("chat-2")
        store.list()
        store.search("hello")
        store.insight_rows()
    found = modes(tmp_path / "data")
    folders = {name for name in found if (tmp_path / "data" / name).is_dir()}
    assert {"history", "history/users", "history/users/3f2a", "history/.trash", "history/.locks",
            "history/users/3f2a/.trash", "history/users/3f2a/.locks"} <= folders
    assert {name: mode for name, mode in found.items() if name in folders and mode != 0o700} == {}
    files = set(found) - folders
    assert {"history/chat-1.json", "history/.trash/chat-2.json", "history/.index/index.sqlite"} <= files
    assert any(name.startswith("history/.locks/") for name in files)
    assert {name: oct(mode) for name, mode in found.items() if name in files and mode != 0o600} == {}


def test_folders_left_open_by_an_older_version_are_closed_when_opened(tmp_path):
    base = tmp_path / "history"
    for folder in (base / ".trash", base / ".locks", base / "users" / "3f2a" / ".trash"):
        folder.mkdir(parents=True)
    for folder in (base, base / ".trash", base / ".locks", base / "users", base / "users" / "3f2a",
                   base / "users" / "3f2a" / ".trash"):
        folder.chmod(0o755)
    (base / "notes").mkdir(mode=0o755)  # not the store's: left as it is

    open_store(base, "users/3f2a")
    JsonHistoryStore(base)

    found = modes(base)
    assert found.pop("notes") == 0o755
    assert found == {name: 0o700 for name in found}


def test_lock_files_are_a_fixed_few_however_many_conversations_come_and_go(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    for number in range(600):
        new_conversation(store, f"chat-{number}")
    for number in range(0, 600, 2):
        store.delete(f"chat-{number}")
    store.purge_deleted(datetime.now(UTC) + timedelta(seconds=1))

    locks = list((store.root / json_store.LOCKS_DIR).iterdir())
    assert 0 < len(locks) <= json_store.LOCK_SLOTS == 256
    assert {lock.name for lock in locks} <= {f"{slot:02x}.lock" for slot in range(256)}
    assert store.lock_path("chat-7") == store.lock_path("chat-7") != store.lock_path("chat-8")


def test_lock_files_an_older_version_left_for_every_id_are_removed_when_the_folder_opens(tmp_path):
    root = tmp_path / "history"
    store = JsonHistoryStore(root)
    new_conversation(store, "kept")
    locks = root / json_store.LOCKS_DIR
    for number in range(300):
        (locks / f"20260101-000000-{number:08x}.lock").touch()

    reopened = JsonHistoryStore(root)

    assert {lock.name for lock in locks.iterdir()} == {reopened.lock_path("kept").name}
    reopened.append("kept", make_message("user", "still saves"))


def test_the_trash_listing_reads_only_files_that_changed(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    for conversation_id in ("a", "b", "c"):
        new_conversation(store, conversation_id, f"question {conversation_id}")
    store.delete("a")
    store.delete("b")
    assert [s.id for s in store.deleted()] == ["b", "a"] and store.trash_scan.parsed == 2

    for _ in range(3):  # every History page load
        assert [s.id for s in store.deleted()] == ["b", "a"]
        assert store.trash_scan.parsed == 0 and store.trash_scan.files == 2

    time.sleep(0.05)  # change times tick coarsely
    store.delete("c")
    store.restore("a")
    assert [s.id for s in JsonHistoryStore(store.root).deleted()] == ["c", "b"]
    assert store.trash_scan.parsed == 1  # only c, in a new store object on the same folder


def test_the_trash_age_counts_from_the_delete_not_from_the_last_message(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    new_conversation(store, "old-talk")
    long_ago = time.time() - 90 * 86400
    os.utime(store.path_for("old-talk"), (long_ago, long_ago))  # last saved three months ago
    store.delete("old-talk")  # deleted now

    assert store.purge_deleted(datetime.now(UTC) - timedelta(days=30)) == 0
    assert [s.id for s in store.deleted()] == ["old-talk"]


def test_a_damaged_file_in_the_trash_is_purged_with_the_rest(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    trash = store.root / json_store.TRASH_DIR
    trash.mkdir(parents=True)
    (trash / "broken.json").write_text("{not json", encoding="utf-8")
    (trash / "two words.json").write_text("{}", encoding="utf-8")  # not an id: never touched
    assert store.deleted() == []

    assert store.purge_deleted(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert sorted(p.name for p in trash.iterdir()) == ["two words.json"]


def test_the_caches_an_older_version_kept_are_removed_and_a_folder_of_that_name_is_not(tmp_path):
    root = tmp_path / "history"
    root.mkdir()
    for name in json_store.OLD_CACHES[:2]:
        (root / name).write_bytes(b"text of a deleted conversation")
    (root / json_store.OLD_CACHES[2]).mkdir()  # not something this app made
    JsonHistoryStore(root)
    assert not (root / ".index.json").exists() and not (root / ".search-index").exists()
    assert (root / ".insights-index").is_dir()
