"""The database side of the SQL history store: tables, engines, transactions and the schema version.

Tables (prefixed `chatbot_`, so the store can share a database with other apps):

- `chatbot_conversations`: one row per conversation, live or in the trash (`deleted_at` set), with
  the listing's columns, the top-level extra keys as JSON, and `revision`, raised by every change.
- `chatbot_messages`: one row per message, keyed by its conversation's `serial` and its position:
  role, content and created_at as columns, every other key as JSON.
- `chatbot_schema_meta`: `schema_version`, the version of these tables (not of the conversation
  JSON, which has its own `schema_version`; see docs/history-format.md).

Derived tables (version 2 on: search and Insights), rewritten in each change's transaction, are made and
filled by history/stores/sql_derived.py, whose docstring lists them.

A live id is unique per owner; the trash holds at most one copy per id (a partial unique index
each), as the JSON store's folder and its `.trash/` do.

Transactions: every change locks its conversation's row first (SELECT ... FOR UPDATE on PostgreSQL;
on SQLite a write transaction is BEGIN IMMEDIATE, which locks the database), so writers on any number
of servers apply their changes one after another on what is saved, never on a stale copy. Reads on
PostgreSQL are REPEATABLE READ, so a conversation and its messages come from one snapshot.

Every wait is bounded, and every failure is one of history/errors.py's exceptions
(history/stores/sql_faults.py says which): connecting (CONNECT_TIMEOUT), waiting for a pooled connection
(POOL_TIMEOUT), for a lock (LOCK_TIMEOUT: PostgreSQL's lock_timeout, SQLite's busy timeout), for a
statement (STATEMENT_TIMEOUT, PostgreSQL's statement_timeout), and for a server that never answers
(history/stores/sql_deadline.py). A pooled connection that died (the server restarted) is replaced before use
(pre-ping), or, on an engine without pre-ping, when the transaction's first statement fails on it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from history.errors import HistoryUnavailable
from history.stores import sql_deadline
from history.stores.atomic import LOCK_TIMEOUT
from history.stores.sql_faults import database_error, is_locked, unanswered

SCHEMA_VERSION = 4
CONNECT_TIMEOUT = 5  # seconds to open a connection (libpq takes whole seconds)
POOL_TIMEOUT = 5.0  # seconds to wait for a free pooled connection
STATEMENT_TIMEOUT = 5.0  # seconds one statement may run on PostgreSQL
ANSWER_GRACE = 2.0  # past STATEMENT_TIMEOUT, a server that has not answered at all is taken for frozen
_SQLITE_BUSY_WAIT = 0.05  # SQLite's own wait for a lock, in steps of 1 to 20 ms
_SQLITE_POLL = 0.002  # then BEGIN IMMEDIATE is tried again this often, as the JSON folder's lock is
PREFIX = "chatbot_"
_WRITE = "chatbot_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_ADVISORY_LOCK = 0x63686174626F74  # "chatbot": serialises upgrade() across servers on PostgreSQL

metadata = sa.MetaData()
_Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

schema_meta = sa.Table(
    f"{PREFIX}schema_meta",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

conversations = sa.Table(
    f"{PREFIX}conversations",
    metadata,
    sa.Column("serial", _Serial, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(200), nullable=False),  # "" shared; "users/<hash>" per signed-in user
    sa.Column("id", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("updated_order", sa.Float, nullable=False),  # updated_at as epoch seconds, for sorting
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("titled_by_user", sa.Boolean, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),  # top-level keys beyond the schema's, in order
    sa.Column("layout", sa.JSON(none_as_null=True)),  # exact text a column could not hold (NUL)
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("deleted_at", sa.Text),  # ISO time it went to the trash; NULL while live
)
_live = conversations.c.deleted_at.is_(None)
_trashed = conversations.c.deleted_at.is_not(None)
sa.Index(
    f"{PREFIX}conversations_live", conversations.c.owner, conversations.c.id,
    unique=True, postgresql_where=_live, sqlite_where=_live,
)
sa.Index(
    f"{PREFIX}conversations_trash", conversations.c.owner, conversations.c.id,
    unique=True, postgresql_where=_trashed, sqlite_where=_trashed,
)
sa.Index(f"{PREFIX}conversations_recent", conversations.c.owner, conversations.c.updated_order)


def serial_of_conversation() -> sa.Column:
    """The key of a row that belongs to a conversation: its serial, removed with it."""
    foreign = sa.ForeignKey(conversations.c.serial, ondelete="CASCADE")
    return sa.Column("conversation_serial", _Serial, foreign, primary_key=True)


messages = sa.Table(
    f"{PREFIX}messages",
    metadata,
    serial_of_conversation(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text),  # NULL when the message has no (text) created_at
    sa.Column("extra", sa.JSON, nullable=False),  # every other key, in order
    sa.Column("layout", sa.JSON(none_as_null=True)),  # key order and exact text, when not the usual
    sa.CheckConstraint("role IN ('system', 'user', 'assistant')", name=f"{PREFIX}messages_role"),
)

class SchemaTooNew(HistoryUnavailable, RuntimeError):
    """The database was upgraded by a newer version of the app."""


def _search(connection: Connection) -> None:
    """Version 2: search in SQL, its table filled from the conversations saved so far."""
    from history.stores import sql_derived  # it builds on this module's tables

    sql_derived.add_search(connection)


def _insights(connection: Connection) -> None:
    """Version 4: the Insights tables again, with their live owner and indexes, and the day totals; on
    PostgreSQL the search table again, with its live owner, the documents kept in their rows."""
    from history.stores import sql_derived

    sql_derived.rebuild(connection)


# Upgrade steps for databases made by an older version: STEPS[n] takes version n - 1 to n (version 3's
# change to the Insights rows is rebuilt by version 4's). A new database is created at SCHEMA_VERSION from
# `metadata` and history/stores/sql_derived.py's tables directly.
STEPS: dict[int, Callable[[Connection], None]] = {2: _search, 3: lambda _: None, 4: _insights}

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_upgraded: weakref.WeakSet[Engine] = weakref.WeakSet()


def normalize_url(url: str) -> str:
    """postgres:// and postgresql:// (as hosts print them) use psycopg 3, the driver this app ships."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def is_database_url(target: object) -> bool:
    """A SQLAlchemy URL (`dialect[+driver]://...`) rather than a folder path."""
    return isinstance(target, str) and "://" in target and not target.startswith("file://")


def engine_for(target: str | Engine) -> Engine:
    """One engine per database URL in this process, shared by every owner's store.

    SQLite always gets an engine of its own, set up for BEGIN IMMEDIATE writes (pysqlite would
    otherwise start transactions late, after the reads a change depends on). A PostgreSQL engine
    passed in (st.connection's) is used as it is: each transaction sets its own isolation level.
    """
    if isinstance(target, Engine):
        if target.dialect.name != "sqlite":
            return target
        target = target.url.render_as_string(hide_password=False)
    url = normalize_url(target)
    with _engines_lock:
        if url not in _engines:
            _engines[url] = _new_engine(url)
        return _engines[url]


def engine_options(url: str | sa.URL) -> dict:
    """create_engine() keyword arguments that bound every wait on this database, for engines made
    elsewhere too: st.connection("history", type="sql", **engine_options(url)).

    PostgreSQL and others: pre-ping (a connection that died in the pool, as when the server restarted,
    is replaced before use), POOL_TIMEOUT for a free connection, and on PostgreSQL CONNECT_TIMEOUT to
    connect. SQLite: its busy timeout, LOCK_TIMEOUT. Lock and statement timeouts are set by each
    transaction itself (transaction()), so they hold whoever made the engine.
    """
    parsed = sa.make_url(normalize_url(url) if isinstance(url, str) else url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": LOCK_TIMEOUT}}
    options: dict = {"pool_pre_ping": True, "pool_timeout": POOL_TIMEOUT}
    if backend == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return options


def _switch_to_wal(cursor) -> None:
    """WAL, so readers never wait for a writer. Switching a new database waits for the other servers
    opening it too; SQLite can refuse that at once, without its busy handler, so it is polled for up
    to LOCK_TIMEOUT as BEGIN IMMEDIATE is."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT * 1000)}")
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorname.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(_SQLITE_POLL)
    cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_WAIT * 1000)}")


def _new_engine(url: str) -> Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, **engine_options(parsed))
    memory = parsed.database in (None, "", ":memory:")
    options = engine_options(parsed)
    # SQLite's own busy handler backs off to 100 ms naps, so a writer could starve for seconds while
    # others take turns; it waits only briefly, and _on_begin polls for the write lock up to LOCK_TIMEOUT.
    options["connect_args"].update(check_same_thread=False, timeout=_SQLITE_BUSY_WAIT)
    engine = sa.create_engine(parsed, **options, **({"poolclass": StaticPool} if memory else {}))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below starts transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            _switch_to_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(_WRITE):
            connection.exec_driver_sql("BEGIN")
            return
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as error:
                if not is_locked(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(_SQLITE_POLL)

    return engine


_TIMEOUTS = sa.text(
    "SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :statement, true)"
)


def _begin(engine: Engine, write: bool) -> Connection:
    """A connection in a new transaction, its timeouts set (the transaction's first statement)."""
    postgres = engine.dialect.name == "postgresql"
    options: dict[str, object] = {_WRITE: write}
    if postgres:
        options["isolation_level"] = "READ COMMITTED" if write else "REPEATABLE READ"
    connection = engine.connect()
    try:
        connection.execution_options(**options)
        connection.begin()  # SQLite: BEGIN IMMEDIATE for a write, waiting up to its busy timeout
        if postgres:
            limits = {"lock": LOCK_TIMEOUT, "statement": STATEMENT_TIMEOUT}
            connection.execute(_TIMEOUTS, {name: str(int(s * 1000)) for name, s in limits.items()})
    except BaseException:
        connection.close()
        raise
    return connection


def _started(engine: Engine, write: bool) -> Connection:
    """_begin(), once more on a fresh connection if the pooled one had died (the server restarted):
    it failed on the first statement, before anything was done."""
    try:
        return _begin(engine, write)
    except sa.exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return _begin(engine, write)  # the pool dropped every connection older than the dead one


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A transaction that commits at the end. Any failure is a history error (HistoryBusy for a lock
    or statement timeout, DatabaseUnreachable for a server that is down or does not answer...)."""
    with sql_deadline.watch(engine, STATEMENT_TIMEOUT + ANSWER_GRACE) as watch:
        try:
            connection = _started(engine, write)
            try:
                yield connection
                connection.commit()
            finally:
                connection.close()  # rolls back what did not commit
        except sa.exc.SQLAlchemyError as error:
            if watch.fired:
                raise unanswered(engine.url, watch.seconds) from error
            raise database_error(engine.url, error) from error
        except sql_deadline.Expired:
            raise unanswered(engine.url, watch.seconds) from None


def schema_version(connection: Connection) -> int:
    """The version recorded in the database; 0 before the tables exist."""
    if not sa.inspect(connection).has_table(schema_meta.name):
        return 0
    value = connection.scalar(sa.select(schema_meta.c.value).where(schema_meta.c.name == "schema_version"))
    return int(value) if value is not None else 0


def upgrade(target: str | Engine) -> int:
    """Create or upgrade the tables to SCHEMA_VERSION; returns the version the database had.

    Idempotent, and safe when several servers start at once: PostgreSQL serialises it with an
    advisory lock, SQLite with BEGIN IMMEDIATE, and each step commits with its version number.
    """
    engine = engine_for(target)
    with transaction(engine, write=True) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        found = schema_version(connection)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the history database has schema version {found}, newer than this app understands "
                f"({SCHEMA_VERSION}); upgrade the app to use it"
            )
        if found == 0:
            from history.stores import sql_derived  # its tables build on these

            metadata.create_all(connection)
            sql_derived.create_tables(connection)
        else:
            for version in range(found + 1, SCHEMA_VERSION + 1):
                STEPS[version](connection)
        if found != SCHEMA_VERSION:
            connection.execute(sa.delete(schema_meta).where(schema_meta.c.name == "schema_version"))
            version = {"name": "schema_version", "value": str(SCHEMA_VERSION)}
            connection.execute(sa.insert(schema_meta).values(**version))
    _upgraded.add(engine)
    return found


def ensure_upgraded(engine: Engine) -> None:
    """upgrade() once per engine in this process."""
    if engine not in _upgraded:
        upgrade(engine)
