"""Faults under the history stores: a full disk, a read-only folder, a lock held elsewhere, and a
database that restarts, stops or freezes. Each store call fails with one of history/errors.py's
exceptions, whose message names the cause and what to do, within a few seconds, and changes nothing
saved; once the fault is gone the same call works.

The disks are real (tests/disks.py: a tmpfs of the test's own, as root); the server is the real test
PostgreSQL (tests/pg_server.py: stopped, restarted and frozen with pg_ctl and SIGSTOP).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from history.errors import (
    ConversationExists,
    ConversationTooLarge,
    DatabaseUnreachable,
    HistoryBusy,
    HistoryError,
    HistoryFull,
    HistoryReadOnly,
)
from history.models import Conversation
from history.stores import atomic, json_store, sql_schema
from history.stores.backend import open_store
from history.stores.json_store import JsonHistoryStore
from history.stores.sql_schema import engine_for, engine_options, transaction
from history.stores.sql_store import SqlHistoryStore
from history.transfer.importers import ALREADY_HERE, import_file
from tests.backends import _forget_engine
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
    "page": lambda s: s.page(1, 0),
    "count": lambda s: s.count(),
    "unreadable": lambda s: s.unreadable(),
    "exists": lambda s: s.exists("kept"),
    "search": lambda s: s.search("question"),
    "insight_rows": lambda s: s.insight_rows(),
    "insights": lambda s: s.insights(),
    "imported_sources": lambda s: s.imported_sources(),
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
        Conversation(id="large", title="Large", messages=[message("user", "x" * 100_000)] * 4).to_dict(),
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
    lock = store.lock_path(conversation_id)
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


# Both kinds of store: ids taken, and a conversation at its size limit


def test_a_taken_id_is_conversation_exists_still_a_file_exists_error(backend):
    store = backend.store()
    seed(store)
    with pytest.raises(ConversationExists) as caught:
        store.create(Conversation(id="kept"))
    assert isinstance(caught.value, FileExistsError)
    assert_names_the_cause(caught.value, "'kept'", "already")
    store.create(Conversation(id="trashed"))
    with pytest.raises(ConversationExists):
        store.restore("trashed")


def test_a_conversation_over_the_size_limit_offers_a_new_one_and_keeps_the_old(backend, monkeypatch):
    store = backend.store()
    seed(store)
    monkeypatch.setattr(json_store, "MAX_FILE_BYTES", 2000)
    with pytest.raises(ConversationTooLarge) as caught:
        store.append("kept", message("user", "x" * 3000))
    assert_names_the_cause(caught.value, "MB", "new conversation")
    assert contents(store) == ["question", "answer"]


# The database: options that bound every wait


def test_engine_options_bound_every_wait_and_create_engine_takes_them():
    postgres = engine_options("postgresql+psycopg://user@db.example/chat")
    assert postgres["pool_pre_ping"] is True
    assert postgres["connect_args"]["connect_timeout"] <= 5 and postgres["pool_timeout"] <= 5
    assert engine_options("postgres://user@db.example/chat") == postgres
    assert engine_options("sqlite:///history.db")["connect_args"]["timeout"] <= 5
    for url in ("postgresql+psycopg://user@db.example/chat", "sqlite:///history.db"):
        sa.create_engine(url, **engine_options(url)).dispose()


# The PostgreSQL server restarted, stopped, frozen


@pytest.fixture
def database(postgres_target, postgres_server):
    """A store on a fresh schema of the test server, seeded; and the server, to break."""
    store = open_store(postgres_target)
    seed(store)
    return store, postgres_server


@pytest.fixture
def other_url(postgres_target) -> Iterator[str]:
    """The same database under another URL: a store opened there starts with no connection of its own."""
    url = sa.make_url(postgres_target).update_query_dict({"application_name": "second-server"})
    url = url.render_as_string(hide_password=False)
    yield url
    _forget_engine(url)


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "retried"])
def test_a_restarted_database_costs_no_user_action(postgres_target, postgres_server, pre_ping):
    # engine_for's own engine pre-pings; one made without pre-ping (as an app might pass in) retries
    engine = engine_for(postgres_target) if pre_ping else sa.create_engine(postgres_target)
    store = SqlHistoryStore(engine)
    try:
        seed(store)
        postgres_server.restart()  # every pooled connection is now dead
        store.append("kept", message("user", "after the restart"))
        assert contents(store) == ["question", "answer", "after the restart"]
        for read in READS.values():
            read(store)
    finally:
        if not pre_ping:
            engine.dispose()


def test_a_stopped_database_fails_at_once_saying_what_to_check_and_works_once_started(database, other_url):
    store, server = database
    before = store.get("kept")
    server.stop()
    for name, call in {**READS, **{name: write for name, (_, write) in WRITES.items()}}.items():
        started = time.monotonic()
        with pytest.raises(DatabaseUnreachable) as caught:
            call(store)
        assert time.monotonic() - started < FEW_SECONDS, name
        assert_names_the_cause(caught.value, "cannot be reached", "[connections.history]", "try again")
    with pytest.raises(DatabaseUnreachable):
        open_store(other_url)  # a server starting while the database is down
    server.start()
    assert store.get("kept") == before
    store.append("kept", message("user", "back"))
    assert contents(open_store(other_url)) == ["question", "answer", "back"]


@pytest.mark.timeout(90)  # a hang fails here, not at the suite's 300 s
def test_a_frozen_database_fails_within_seconds_and_works_once_it_thaws(database, other_url):
    store, server = database
    before = store.get("kept")
    server.freeze()  # connections are accepted and data is taken, but nothing ever answers
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnreachable) as caught:
            store.append("kept", message("user", "into the void"))
        assert time.monotonic() - started < FEW_SECONDS
        assert_names_the_cause(caught.value, "did not answer", "[connections.history]", "try again")
        started = time.monotonic()
        with pytest.raises(DatabaseUnreachable):
            open_store(other_url)  # a new connection: the connect timeout
        assert time.monotonic() - started < FEW_SECONDS
    finally:
        server.thaw()
    assert store.get("kept") == before  # the append that did not answer saved nothing
    store.append("kept", message("user", "thawed"))
    assert contents(store) == ["question", "answer", "thawed"]


@pytest.mark.timeout(90)
def test_a_database_that_freezes_mid_transaction_fails_within_seconds_and_keeps_nothing_of_it(database):
    store, server = database
    rename = sa.text("UPDATE chatbot_conversations SET title = 'half done' WHERE id = 'kept'")
    started = time.monotonic()
    with pytest.raises(DatabaseUnreachable) as caught, transaction(store.engine, write=True) as connection:
        connection.execute(rename)
        server.freeze()  # between two statements of one transaction
        connection.execute(sa.text("SELECT count(*) FROM chatbot_messages"))
    assert time.monotonic() - started < FEW_SECONDS
    assert_names_the_cause(caught.value, "did not answer", "[connections.history]")
    server.thaw()
    assert store.get("kept").title == "question"  # the first statement was rolled back with the rest


def test_a_slow_statement_is_cut_off_by_the_statement_timeout_as_busy(database, monkeypatch):
    store, _ = database
    monkeypatch.setattr(sql_schema, "STATEMENT_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(HistoryBusy) as caught, transaction(store.engine, write=False) as connection:
        connection.execute(sa.text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 3
    assert_names_the_cause(caught.value, "busy", "try again")
    assert contents(store) == ["question", "answer"]
