"""The JSON-folder history store: file format, atomic locked writes, unreadable files, listing cache.

What every store must do (the database's too) is in tests/test_store_contract.py; here, what only
the folder of files has.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from history.errors import HistoryUnavailable
from history.models import (
    SCHEMA_VERSION,
    Conversation,
    InvalidConversation,
    make_message,
)
from history.stores import atomic, json_store
from history.stores.base import ConversationChanged, ConversationNotFound
from history.stores.json_store import JsonHistoryStore
from history.stores.legacy import COPY_ID, LEGACY_ID

SCHEMA_KEYS = {"schema_version", "id", "title", "created_at", "updated_at", "model", "messages"}


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "conversations"


@pytest.fixture
def store(root) -> JsonHistoryStore:
    return JsonHistoryStore(root)


def user(text: str) -> dict:
    return make_message("user", text)


def new_conversation(store: JsonHistoryStore, conversation_id: str, *texts: str) -> Conversation:
    conversation = store.create(Conversation(id=conversation_id, model="m1"))
    return store.append(conversation_id, *(user(t) for t in texts)) if texts else conversation


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# Round trip and file format


def test_file_is_readable_utf8_json_with_every_schema_key(store):
    new_conversation(store, "chat-1", "Grüße, 你好 👋")
    raw = store.path_for("chat-1").read_bytes()
    text = raw.decode("utf-8")
    assert "Grüße, 你好 👋" in text  # not \u-escaped
    assert '\n  "id": "chat-1"' in text  # indented for people
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data.keys() >= SCHEMA_KEYS
    assert set(data["messages"][0]) == {"role", "content", "created_at"}


def test_create_refuses_an_existing_id(store):
    new_conversation(store, "chat-1", "first")
    before = store.path_for("chat-1").read_bytes()
    with pytest.raises(FileExistsError):
        store.create(Conversation(id="chat-1"))
    assert store.path_for("chat-1").read_bytes() == before


def test_reads_of_a_missing_folder_create_nothing(root, store):
    assert store.list() == [] and store.unreadable() == [] and store.latest() is None
    with pytest.raises(ConversationNotFound):
        store.get("nope")
    with pytest.raises(ConversationNotFound):
        store.append("nope", user("x"))
    assert not root.exists()


# Atomic writes (killed writers: tests/test_store_crash.py; concurrent ones: tests/test_store_concurrency.py)


def test_writes_leave_no_temporary_files(root, store):
    new_conversation(store, "chat-1", "a", "b")
    store.update("chat-1", title="t")
    store.list()
    assert temp_files(root) == []
    assert {p.name for p in root.iterdir()} == {"chat-1.json", ".locks", ".index"}


def test_a_save_that_fails_midway_keeps_the_old_file(root, store):
    new_conversation(store, "chat-1", "kept")
    before = store.path_for("chat-1").read_bytes()
    with pytest.raises(TypeError):
        store.append("chat-1", {"role": "user", "content": "x", "attachment": object()})
    assert store.path_for("chat-1").read_bytes() == before
    assert temp_files(root) == []


def test_a_crash_between_write_and_replace_keeps_the_old_file(root, store, monkeypatch):
    new_conversation(store, "chat-1", "kept")
    before = store.path_for("chat-1").read_bytes()

    def killed(*args):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(HistoryUnavailable, match=r"could not be written \(simulated crash"):
        store.append("chat-1", user("lost"))
    monkeypatch.undo()
    assert store.path_for("chat-1").read_bytes() == before
    assert temp_files(root) == []
    assert [m["content"] for m in store.get("chat-1").messages] == ["kept"]


# Unreadable files (every kind of damage: tests/test_store_damage.py)


def test_badly_named_files_are_reported(root, store):
    new_conversation(store, "good")
    (root / "CON.json").write_text("{}")
    (root / "two words.json").write_text("{}")
    (root / ".hidden.json").write_text("{}")
    (root / "notes.txt").write_text("ignored")
    assert [s.id for s in store.list()] == ["good"]
    assert sorted(p.name for p in store.unreadable()) == ["CON.json", "two words.json"]


# Listing and its caches


def test_listing_reparses_only_changed_files(root, store, monkeypatch):
    for n in range(5):
        new_conversation(store, f"c{n}", f"question {n}")
    parsed = []
    original = json_store.index_file

    def counting(path, info):
        parsed.append(path.name)
        return original(path, info)

    monkeypatch.setattr(json_store, "index_file", counting)
    assert len(store.list()) == 5
    assert parsed == [] and store.last_scan.parsed == 0  # this process wrote them: nothing to read

    store.append("c1", user("more"))
    assert store.list()[0].id == "c1" and parsed == []

    path = root / "c3.json"  # another process edits a file
    data = json.loads(path.read_text(encoding="utf-8"))
    data["title"] = "Edited elsewhere"
    path.write_text(json.dumps(data), encoding="utf-8")
    titles = {s.id: s.title for s in store.list()}
    assert parsed == ["c3.json"] and store.last_scan.names == ["c3.json"]
    assert titles["c3"] == "Edited elsewhere"

    (root / "c0.json").unlink()
    assert len(store.list()) == 4 and store.last_scan.removed == 1 and parsed == ["c3.json"]


# The Flask MVP's history file


FLASK_MESSAGES = [
    {"role": "user", "content": "Wie spät ist es?"},
    {"role": "assistant", "content": "Keine Ahnung."},
]


@pytest.fixture
def legacy_file(root) -> Path:
    root.mkdir()
    path = root / "conversation_history.json"
    path.write_text(json.dumps(FLASK_MESSAGES, ensure_ascii=False), encoding="utf-8")
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return path


def test_flask_history_is_listed_and_opened_read_only(store, legacy_file):
    [summary] = store.list()
    assert summary.id == LEGACY_ID and summary.read_only
    assert summary.title == "Wie spät ist es?" and summary.model == "" and summary.message_count == 2
    assert summary.created_at == summary.updated_at == "2023-11-14T22:13:20.000Z"
    conversation = store.get(LEGACY_ID)
    assert [(m["role"], m["content"]) for m in conversation.messages] == [
        (m["role"], m["content"]) for m in FLASK_MESSAGES
    ]
    assert {m["created_at"] for m in conversation.messages} == {"2023-11-14T22:13:20.000Z"}


def test_continuing_flask_history_writes_a_copy(store, legacy_file):
    before = (legacy_file.read_bytes(), legacy_file.stat().st_mtime_ns)
    copy = store.append(LEGACY_ID, user("Und jetzt?"))
    assert copy.id == COPY_ID
    assert copy.extra == {"imported_from": "conversation_history.json"}
    assert [m["content"] for m in copy.messages] == ["Wie spät ist es?", "Keine Ahnung.", "Und jetzt?"]
    assert copy.title == "Wie spät ist es?"

    again = store.append(LEGACY_ID, make_message("assistant", "Immer noch keine."))  # a stale page
    assert again.id == COPY_ID and len(again.messages) == 4
    assert store.update(LEGACY_ID, title="Zeit").id == COPY_ID

    assert [(s.id, s.read_only) for s in store.list()] == [(COPY_ID, False)]
    assert len(store.get(LEGACY_ID).messages) == 2
    assert (legacy_file.read_bytes(), legacy_file.stat().st_mtime_ns) == before


def test_a_broken_flask_history_is_reported(store, legacy_file):
    legacy_file.write_text('[{"role": "user"}]', encoding="utf-8")
    assert store.list() == []
    [problem] = store.unreadable()
    assert problem.name == "conversation_history.json" and "content" in problem.reason


# Trash


def test_delete_moves_to_trash_and_restore_brings_it_back(root, store):
    new_conversation(store, "chat-1", "keep me")
    new_conversation(store, "chat-2", "other")
    original = store.path_for("chat-1").read_bytes()

    store.delete("chat-1")
    assert [s.id for s in store.list()] == ["chat-2"]
    assert not store.exists("chat-1")
    with pytest.raises(ConversationNotFound):
        store.get("chat-1")
    assert (root / ".trash" / "chat-1.json").read_bytes() == original

    store.restore("chat-1")
    assert store.path_for("chat-1").read_bytes() == original
    assert {s.id for s in store.list()} == {"chat-1", "chat-2"}
    with pytest.raises(ConversationNotFound):
        store.restore("chat-1")
    with pytest.raises(ConversationNotFound):
        store.delete("never-existed")


def test_the_trash_listing_creates_no_folder_and_skips_a_broken_file(root, store):
    assert store.deleted() == [] and not root.exists()
    new_conversation(store, "a", "question a")
    store.delete("a")
    (root / ".trash" / "broken.json").write_text("{not json", encoding="utf-8")
    assert [s.id for s in store.deleted()] == ["a"]


# Replacing the end of a conversation (regenerate, edit) and changing one message (feedback)


def test_tail_and_message_changes_rewrite_the_file_whole_or_leave_it_untouched(root, store):
    """The contract tests (tests/test_store_contract.py) check what these do; here, the file itself."""
    new_conversation(store, "chat-1", "one", "two", "three")
    after = store.replace_tail("chat-1", 1, user("new ending"), expected_count=3)
    data = json.loads(store.path_for("chat-1").read_text(encoding="utf-8"))
    assert Conversation.from_dict(data) == after == store.get("chat-1")
    stamp = after.messages[0]["created_at"]
    before = store.path_for("chat-1").read_bytes()
    for start, expected_count in ((1, 1), (1, 3), (-1, 2), (3, 2)):
        with pytest.raises(ConversationChanged, match="chat-1"):
            store.replace_tail("chat-1", start, user("lost"), expected_count=expected_count)
    with pytest.raises(InvalidConversation):
        store.replace_tail("chat-1", 1, {"role": "robot", "content": "beep"}, expected_count=2)
    for field in ("role", "content", "created_at"):
        with pytest.raises(ValueError, match=field):
            store.update_message("chat-1", 0, stamp, **{field: "changed"}, feedback="up")
    for index, created_at in ((0, "2001-01-01T00:00:00.000Z"), (2, stamp), (-1, stamp)):
        with pytest.raises(ConversationChanged):
            store.update_message("chat-1", index, created_at, feedback="up")
    assert store.path_for("chat-1").read_bytes() == before
    assert temp_files(root) == []
