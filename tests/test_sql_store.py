"""What only the database store has: the schema version and its upgrade, row locks, damaged rows.

Runs on SQLite and on PostgreSQL (tests/backends.py); the shared contract is tests/test_store_contract.py.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatbot.access import user_folder
from history.errors import HistoryBusy
from history.models import Conversation, InvalidConversation, make_message
from history.stores import sql_schema
from history.stores.backend import check_owner, history_store, open_store, owner_for, store_owners
from history.stores.json_store import JsonHistoryStore
from history.stores.sql_schema import SCHEMA_VERSION, SchemaTooNew, engine_for, normalize_url, upgrade
from history.stores.sql_store import SqlHistoryStore
from history.transfer.export import all_conversations_zip


def user(text: str) -> dict:
    return make_message("user", text)


def execute(target: str, sql: str, **params) -> list:
    with engine_for(target).begin() as connection:
        result = connection.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else []


def tables(target: str) -> set[str]:
    with engine_for(target).connect() as connection:
        return set(sa.inspect(connection).get_table_names())


# Schema version and upgrade


def test_upgrade_creates_the_tables_once_and_records_the_version(sql_backend):
    target = sql_backend.target
    assert upgrade(target) == 0
    assert {"chatbot_schema_meta", "chatbot_conversations", "chatbot_messages", "chatbot_insight_rows",
            "chatbot_search"} <= tables(target)
    assert execute(target, "SELECT name, value FROM chatbot_schema_meta") == [("schema_version", "4")]
    assert upgrade(target) == SCHEMA_VERSION == 4  # idempotent: nothing to do
    store = SqlHistoryStore(target)
    store.create(Conversation(id="kept", messages=[user("hi")]))
    assert upgrade(target) == 4 and [m["content"] for m in store.get("kept").messages] == ["hi"]


def _upgrade_in_process(target: str, start) -> None:
    start.wait()
    upgrade(target)
    SqlHistoryStore(target).create(Conversation(id=f"from-{multiprocessing.current_process().pid}"))


@pytest.mark.timeout(120)
def test_servers_starting_at_once_upgrade_once(sql_backend):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    args = (sql_backend.target, start)
    workers = [context.Process(target=_upgrade_in_process, args=args) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=100)
    assert [worker.exitcode for worker in workers] == [0] * 4
    assert execute(sql_backend.target, "SELECT value FROM chatbot_schema_meta") == [("4",)]
    assert SqlHistoryStore(sql_backend.target).count() == 4


def test_an_upgrade_step_runs_once_for_an_older_database(sql_backend, monkeypatch):
    target = sql_backend.target
    SqlHistoryStore(target).create(Conversation(id="old", messages=[user("from version 4")]))
    ran = []

    def step_5(connection) -> None:
        ran.append(5)
        connection.execute(sa.text("CREATE TABLE chatbot_step_five (n INTEGER)"))

    monkeypatch.setattr(sql_schema, "SCHEMA_VERSION", 5)
    monkeypatch.setitem(sql_schema.STEPS, 5, step_5)
    assert upgrade(target) == 4 and upgrade(target) == 5
    assert ran == [5] and "chatbot_step_five" in tables(target)
    assert execute(target, "SELECT value FROM chatbot_schema_meta") == [("5",)]
    assert [m["content"] for m in SqlHistoryStore(target).get("old").messages] == ["from version 4"]


def test_a_database_from_a_newer_app_is_refused(sql_backend):
    target = sql_backend.target
    upgrade(target)
    execute(target, "UPDATE chatbot_schema_meta SET value = '99'")
    sql_schema._upgraded.discard(engine_for(target))  # as a newly started server
    with pytest.raises(SchemaTooNew, match=r"schema version 99.*upgrade the app"):
        SqlHistoryStore(target)


# Locks: a change waits for the one before it, and a lock held too long is an error, not a hang


def hold_write_lock(target: str, conversation_id: str):
    """A raw transaction holding what an append needs: the row (PostgreSQL) or the database (SQLite)."""
    connection = sa.create_engine(normalize_url(target)).connect()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite has begun nothing yet
    else:
        connection.begin()
        connection.exec_driver_sql(
            "SELECT 1 FROM chatbot_conversations WHERE id = %(id)s FOR UPDATE", {"id": conversation_id}
        )
    return connection


def test_an_append_waits_for_the_writer_holding_the_lock(sql_backend):
    store = sql_backend.store()
    store.create(Conversation(id="locked", messages=[user("one")]))
    holder = hold_write_lock(sql_backend.target, "locked")
    done = []
    writer = threading.Thread(target=lambda: done.append(store.append("locked", user("two"))))
    writer.start()
    time.sleep(0.5)
    assert done == [] and writer.is_alive()  # waiting for the lock, not writing on a stale copy
    holder.exec_driver_sql("COMMIT") if holder.dialect.name == "sqlite" else holder.commit()
    holder.close()
    writer.join(timeout=30)
    assert [m["content"] for m in done[0].messages] == ["one", "two"]


def test_a_lock_held_too_long_is_busy_not_a_hang(sql_backend, monkeypatch):
    monkeypatch.setattr(sql_schema, "LOCK_TIMEOUT", 0.5)  # PostgreSQL: lock_timeout of each transaction
    engine_for(sql_backend.target).dispose()
    sql_schema._engines.pop(sql_backend.target)  # SQLite: the busy timeout of a new engine's connections
    store = sql_backend.store()
    store.create(Conversation(id="locked", messages=[user("one")]))
    holder = hold_write_lock(sql_backend.target, "locked")
    try:
        started = time.monotonic()
        with pytest.raises(HistoryBusy, match="another window or server is saving this conversation"):
            store.append("locked", user("two"))
        assert time.monotonic() - started < 10
    finally:
        holder.close()
    assert [m["content"] for m in store.get("locked").messages] == ["one"]


# Rows a person or another program damaged: reported by id, left alone, the rest keeps working


def plant_broken(target: str) -> None:
    execute(target, "UPDATE chatbot_conversations SET extra = '[1, 2]' WHERE id = 'extra-list'")
    execute(target, "UPDATE chatbot_conversations SET id = 'two words' WHERE id = 'bad-id'")
    execute(
        target,
        "UPDATE chatbot_messages SET layout = '{\"order\": [\"role\"]}' WHERE conversation_serial = "
        "(SELECT serial FROM chatbot_conversations WHERE id = 'bad-order')",
    )


def test_damaged_rows_are_reported_and_refused_and_the_rest_works(sql_backend):
    store = sql_backend.store()
    for conversation_id in ("good", "extra-list", "bad-id", "bad-order"):
        store.create(Conversation(id=conversation_id, messages=[user(f"{conversation_id} says hi")]))
    plant_broken(sql_backend.target)

    assert sorted(s.id for s in store.list()) == ["bad-order", "good"]  # its row alone reads fine
    assert store.count() == 2 and [s.id for s in store.page(1, 1)] == [store.list()[1].id]
    problems = {p.name: p for p in store.unreadable()}
    assert set(problems) == {"extra-list", "two words"}
    assert "not a JSON object" in problems["extra-list"].reason
    assert problems["extra-list"].message.endswith("left untouched; fix or delete its rows in the "
                                                   "history database and reload.")
    for conversation_id, why in (("extra-list", "not a JSON object"), ("bad-order", "malformed key order")):
        for attempt in (
            lambda i=conversation_id: store.get(i),
            lambda i=conversation_id: store.append(i, user("overwrite?")),
            lambda i=conversation_id: store.update(i, title="overwrite?"),
            lambda i=conversation_id: store.delete(i),
        ):
            with pytest.raises(InvalidConversation, match=f"'{conversation_id}': .*{why}.*left untouched"):
                attempt()
        with pytest.raises(FileExistsError):
            store.create(Conversation(id=conversation_id))
        assert store.exists(conversation_id)

    store.append("good", user("after"))
    assert [m["content"] for m in store.get("good").messages] == ["good says hi", "after"]
    assert sorted(h.id for h in store.search("says")) == ["bad-order", "good"]  # as listed
    assert set(store.insight_rows()["conversation_id"]) == {"bad-order", "good"}
    assert store.insights().headline["active_conversations"] == 2  # the same conversations as the rows
    with zipfile.ZipFile(BytesIO(all_conversations_zip(store))) as archive:
        assert sorted(archive.namelist()) == ["README.txt", "good.json"]
        readme = archive.read("README.txt").decode()
    assert "bad-order.json" in readme and "extra-list" in readme


# Owners: the JSON store's per-user folders, a column here


def test_owner_is_the_users_folder_under_the_history_folder(tmp_path):
    history_dir = tmp_path / "history"
    folder = user_folder(history_dir, {"iss": "https://issuer", "sub": "1234"})
    owner = owner_for(history_dir, folder)
    assert owner.startswith("users/") and len(owner) == len("users/") + 32
    assert owner_for(history_dir, history_dir) == ""
    json_store = open_store(str(history_dir), owner)
    assert isinstance(json_store, JsonHistoryStore) and json_store.root == folder.resolve()
    json_store.create(Conversation(id="mine"))
    assert store_owners(str(history_dir)) == ["", owner]
    for bad in ("../x", "/abs", "users/../x", "a//b", "users/", "x\x00", "é"):
        with pytest.raises(ValueError):
            check_owner(bad)
        with pytest.raises(ValueError):
            open_store(str(history_dir), bad)


def test_each_signed_in_user_gets_their_own_history_in_the_database(tmp_path, sql_backend):
    history_dir = tmp_path / "history"
    alice = user_folder(history_dir, {"iss": "https://issuer", "sub": "alice"})
    bob = user_folder(history_dir, {"iss": "https://issuer", "sub": "bob"})
    assert isinstance(history_store(history_dir, alice), JsonHistoryStore)
    stores = {who: history_store(history_dir, folder, sql_backend.target)
              for who, folder in (("alice", alice), ("bob", bob), ("shared", history_dir))}
    for who, store in stores.items():
        store.create(Conversation(id="same", messages=[user(f"{who} here")]))
    for who, store in stores.items():
        assert [m["content"] for m in store.get("same").messages] == [f"{who} here"]
    assert stores["alice"].owner == owner_for(history_dir, alice) and stores["shared"].owner == ""
    assert not history_dir.exists()  # nothing written to the folder


def test_store_owners_of_a_database(sql_backend):
    for owner in ("users/b", "", "users/a"):
        sql_backend.store(owner).create(Conversation(id="x"))
    sql_backend.store("users/c").create(Conversation(id="gone"))
    sql_backend.store("users/c").delete("gone")
    assert store_owners(sql_backend.target) == ["", "users/a", "users/b", "users/c"]


def test_database_urls_as_hosts_print_them_use_psycopg():
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert isinstance(open_store("sqlite://"), SqlHistoryStore)
    assert isinstance(open_store(str(Path("relative/folder"))), JsonHistoryStore)


def test_an_engine_like_st_connections_is_accepted(sql_backend):
    """st.connection("history", type="sql").engine is a plain SQLAlchemy engine, autocommit or not."""
    engine = sa.create_engine(sql_backend.target).execution_options(isolation_level="AUTOCOMMIT")
    try:
        store = SqlHistoryStore(engine, "users/x")
        store.create(Conversation(id="via-engine"))
        store.append("via-engine", user("hello"))
        assert [s.id for s in sql_backend.store("users/x").list()] == ["via-engine"]
    finally:
        engine.dispose()
