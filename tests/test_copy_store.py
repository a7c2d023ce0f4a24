"""python -m history.copy_store: a JSON history folder into a database and back, losing nothing.

The round trip compares bytes: a file the app wrote comes back byte for byte, because the database
keeps every value and every key's order and the JSON store writes a conversation one way only. A
file written by hand (other spacing, other key order) comes back as the app itself would rewrite it:
the same decoded JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatbot.access import user_folder
from history.models import Conversation, make_message
from history.stores.backend import open_store
from history.stores.json_store import JsonHistoryStore
from history.stores.legacy import COPY_ID
from history.transfer.copy_store import copy_store
from tests.test_store_contract import ODD

REPO = Path(__file__).resolve().parents[1]
BOOKKEEPING = {".index.json", ".locks", ".search-index", ".insights-index"}


def user(text: str) -> dict:
    return make_message("user", text)


def conversation_files(root: Path) -> dict[str, bytes]:
    """Every conversation file under the folder (users' and trash too), by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*.json")
        if not BOOKKEEPING & set(path.relative_to(root).parts)
    }


def fill(root: Path) -> str:
    """A history as the app leaves it: shared and per-user conversations, edits, feedback, a trash."""
    shared = JsonHistoryStore(root)
    shared.create(ODD)
    for n in range(3):
        shared.create(Conversation(id=f"c{n}", model="m1"))
        reply = make_message("assistant", f"answer {n}", usage={"t": n})
        shared.append(f"c{n}", user(f"question {n}"), reply)
    shared.update("c0", title="Renamed", settings={"temperature": 0.2})
    stamp = shared.get("c1").messages[1]["created_at"]
    shared.update_message("c1", 1, stamp, feedback="down")
    shared.replace_tail("c2", 1, make_message("assistant", "better"), expected_count=2)
    shared.delete("c1")
    time.sleep(0.05)  # the JSON trash is ordered by change time
    shared.delete("c2")
    shared.create(Conversation(id="c2", messages=[user("a new c2 while the old one is deleted")]))
    owner = str(user_folder(root, {"iss": "https://issuer", "sub": "alice"}).relative_to(root))
    alice = JsonHistoryStore(root / owner)
    alice.create(Conversation(id="c0", messages=[user("alice's own c0")]))
    alice.create(Conversation(id="a1", messages=[user("deleted by alice")]))
    alice.delete("a1")
    return owner


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_json_to_database_and_back_gives_the_same_bytes(tmp_path, make_backend, database, capsys):
    source, back = tmp_path / "source", tmp_path / "back"
    owner = fill(source)
    typed = {"content": "typed", "role": "user", "created_at": "2024-01-01T00:00:00Z"}
    hand_written = {"id": "by-hand", "messages": [typed], "schema_version": 1,
                    "title": "Typed in an editor", "created_at": "2024-01-01T00:00:00Z", "model": "",
                    "updated_at": "2024-01-01T00:00:00Z"}
    (source / "by-hand.json").write_text(json.dumps(hand_written), encoding="utf-8")
    db = make_backend(database).target

    assert copy_store(str(source), db) == 0
    out = capsys.readouterr().out
    assert "shared history: copied 4 conversations (9 messages) and 2 deleted" in out
    assert f"{owner}: copied 1 conversations (1 messages) and 1 deleted" in out
    assert copy_store(db, str(back)) == 0

    before, after = conversation_files(source), conversation_files(back)
    assert sorted(after) == sorted(before)
    assert f"{owner}/.trash/a1.json" in after and ".trash/c2.json" in after
    for name in before:
        if name != "by-hand.json":
            assert after[name] == before[name], name
    assert json.loads(after["by-hand.json"]) == hand_written
    for folder in (source, back):  # the trash keeps its order
        assert [s.id for s in JsonHistoryStore(folder).deleted()] == ["c2", "c1"]
    assert open_store(db).get_deleted("c2") == JsonHistoryStore(source).get_deleted("c2")


def test_database_to_json_and_back_keeps_every_conversation(make_backend, tmp_path):
    first, second = make_backend("sqlite").target, make_backend("sqlite").target
    owner = fill(tmp_path / "seed")
    assert copy_store(str(tmp_path / "seed"), first) == 0
    assert copy_store(first, str(tmp_path / "middle")) == 0
    assert copy_store(str(tmp_path / "middle"), second) == 0
    for who in ("", owner):
        a, b = open_store(first, who), open_store(second, who)
        assert a.list() == b.list() and [s.id for s in a.deleted()] == [s.id for s in b.deleted()]
        for summary in a.list():
            assert a.get(summary.id) == b.get(summary.id)
        for summary in a.deleted():
            assert a.get_deleted(summary.id) == b.get_deleted(summary.id)


def test_ids_already_at_the_destination_are_refused_unless_skipped(tmp_path, make_backend, capsys):
    source = tmp_path / "source"
    fill(source)
    db = make_backend("sqlite").target
    open_store(db).create(Conversation(id="c0", messages=[user("already here")]))
    open_store(db).create(Conversation(id="c1", messages=[user("live here, deleted there")]))

    assert copy_store(str(source), db) == 2
    out = capsys.readouterr().out
    assert "refused, nothing written: 2 id(s)" in out and "c0" in out and "c1 (deleted)" in out
    assert {s.id for s in open_store(db).list()} == {"c0", "c1"}
    assert open_store(db).deleted() == []

    assert copy_store(str(source), db, skip_existing=True) == 0
    assert "skipped 2 already at the destination" in capsys.readouterr().out
    assert [m["content"] for m in open_store(db).get("c0").messages] == ["already here"]
    assert {s.id for s in open_store(db).list()} == {"c0", "c1", "c2", "odd-1"}
    assert [s.id for s in open_store(db).deleted()] == ["c2"]


def test_unreadable_files_and_the_flask_history_are_reported(tmp_path, make_backend, capsys):
    source = tmp_path / "source"
    JsonHistoryStore(source).create(Conversation(id="fine", messages=[user("ok")]))
    (source / "broken.json").write_text("{not json", encoding="utf-8")
    (source / "conversation_history.json").write_text(
        json.dumps([{"role": "user", "content": "from Flask"}]), encoding="utf-8"
    )
    db = make_backend("sqlite").target
    assert copy_store(str(source), db) == 1
    out = capsys.readouterr().out
    assert "not copied, unreadable: broken.json: the file is not valid JSON" in out
    assert f"copied as the app continues it ({COPY_ID})" in out
    copied = open_store(db)
    assert {s.id for s in copied.list()} == {"fine", COPY_ID}
    assert [m["content"] for m in copied.get(COPY_ID).messages] == ["from Flask"]
    assert copy_store(str(source), str(source)) == 2


def test_the_command_line(tmp_path, make_backend):
    source = tmp_path / "source"
    fill(source)
    db = make_backend("sqlite").target
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "history.copy_store", "--from", str(source), "--to", db],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == (
        "total: 4 conversations (9 messages), 3 deleted, 0 skipped, 0 unreadable, 0 failed"
    )
    again = subprocess.run(
        [sys.executable, "-m", "history.copy_store", "--from", str(source), "--to", db],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 2 and "refused" in again.stdout
