"""What the listing, search and Insights need from a set of conversations, in one SQLite database.

The JSON folder keeps it beside its files (`.index/index.sqlite`, history/stores/folder_index.py keeps
it in step with them); the in-memory store keeps one in memory. The conversations stay the only truth: the
index holds, per conversation, its summary, an FTS5 document of its title and messages (bm25
ranking), and the rows Insights aggregates (history.insights.message_rows), all written in one
transaction so they never disagree. It may be deleted at any time; it is built again from the files.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from history import insight_queries
from history.insights import DERIVED, derived_values, message_rows, messages_frame
from history.listing import day_bounds
from history.models import Conversation, ConversationSummary, order_of, source_key
from history.search import FTS5_TOKENIZE, SEPARATOR, SearchHit, Term, body, fts5_query, query_terms, snippet

VERSION = 4  # PRAGMA user_version; an index of another version is built again
StatKey = tuple[int, int, int]  # a file's (mtime_ns, size, inode); the folder's (mtime_ns, ctime_ns, inode)
_ROLE_LETTERS = {"system": "s", "user": "u", "assistant": "a"}
_OWNED = {"texts": "rowid", "insight_rows": "file", "insight_days": "file", "files": "rowid"}  # files last
_ROLES = {letter: role for role, letter in _ROLE_LETTERS.items()}
_SUMMARY = "f.id, f.title, f.created_at, f.updated_at, f.message_count, f.model, f.read_only"
_ROWS = ("created_at, role, source, latency_ms, first_token_ms, prompt_tokens, completion_tokens, "
         "total_tokens, feedback, first_question, status, starts")
_DERIVED = ", ".join(DERIVED)  # history.insights.derived_values, for the SQL of history/insight_queries.py
_DAYS = f"day, {', '.join(insight_queries.DAY_TOTALS)}, month, question, question_key, question_at_us"
_MODEL = "role = 'assistant' AND source = 'model'"  # the partial indexes' terms, as the queries write them
_TERMS = "role, source, status"  # in the indexes too: SQLite checks the terms there, not in the table
_SCHEMA = f"""
CREATE TABLE files (
    rowid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,  -- the file (or, in memory, the id) the entry was made from
    mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, inode INTEGER NOT NULL,  -- its stat key
    reason TEXT,  -- why it cannot be read; NULL when it can, and the columns below are set
    id TEXT, title TEXT, created_at TEXT, updated_at TEXT, sort REAL, message_count INTEGER,
    model TEXT, read_only INTEGER, source TEXT, roles TEXT
);
CREATE INDEX files_recent ON files (sort DESC, id DESC) WHERE reason IS NULL;
CREATE VIRTUAL TABLE texts USING fts5 (title, body, tokenize = '{FTS5_TOKENIZE}');
CREATE TABLE insight_rows (file INTEGER NOT NULL, position INTEGER NOT NULL, {_ROWS}, {_DERIVED},
                           PRIMARY KEY (file, position)) WITHOUT ROWID;
CREATE INDEX insight_latency ON insight_rows (day, latency_ms, {_TERMS})
    WHERE {_MODEL} AND latency_ms IS NOT NULL AND status IS NULL;
CREATE INDEX insight_latency_all ON insight_rows (latency_ms, day, {_TERMS})
    WHERE {_MODEL} AND latency_ms IS NOT NULL AND status IS NULL;
CREATE INDEX insight_first_token ON insight_rows (day, first_token_ms, {_TERMS})
    WHERE {_MODEL} AND first_token_ms IS NOT NULL;
CREATE INDEX insight_first_token_all ON insight_rows (first_token_ms, day, {_TERMS})
    WHERE {_MODEL} AND first_token_ms IS NOT NULL;
CREATE TABLE insight_days (file INTEGER NOT NULL, {_DAYS});  -- insight_queries.day_totals of each entry
CREATE INDEX insight_days_file ON insight_days (file);
-- Covering indexes, so the per-day sums and the question spellings are grouped in index order, unsorted
CREATE INDEX insight_days_day ON insight_days (day, {', '.join(insight_queries.DAY_TOTALS)});
CREATE INDEX insight_days_question ON insight_days (question_key, question, question_at_us, day)
    WHERE question_key IS NOT NULL;
CREATE TABLE folder (mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER);  -- see folder_key
PRAGMA user_version = {VERSION};
"""


@dataclass(frozen=True)
class Entry:
    """What one stored conversation contributes: its conversation, or why it cannot be read."""

    name: str
    key: StatKey
    conversation: Conversation | None = None
    read_only: bool = False
    reason: str | None = None


def create(connection: sqlite3.Connection) -> None:
    """Make the tables in an empty database."""
    connection.executescript(_SCHEMA)


def is_current(connection: sqlite3.Connection) -> bool:
    """Whether the database holds an index this version can use, every table of it."""
    if connection.execute("PRAGMA user_version").fetchone()[0] != VERSION:
        return False
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    return {"files", "texts", "insight_rows", "insight_days", "folder"} <= names


def keys(connection: sqlite3.Connection, names: Iterable[str] | None = None) -> dict[str, StatKey]:
    """The stat key of every entry (or of the named ones)."""
    query, values = "SELECT name, mtime_ns, size, inode FROM files", []
    if names is not None:
        query, values = f"{query} WHERE name IN (SELECT value FROM json_each(?))", [json.dumps(list(names))]
    return {name: (m, s, i) for name, m, s, i in connection.execute(query, values)}


def folder_key(connection: sqlite3.Connection) -> StatKey | None:
    """The folder's stat key as the last pass that saw every change to it found it, if recorded."""
    row = connection.execute("SELECT mtime_ns, ctime_ns, inode FROM folder").fetchone()
    return None if row is None else tuple(row)


def write(connection: sqlite3.Connection, entries: Iterable[Entry], gone: Iterable[str] = (),
          folder: StatKey | None = None) -> None:
    """Drop the gone names, add or replace the entries (and record the folder's key) in one
    transaction: all of it or none.

    The connections here are in autocommit mode (isolation_level=None), where `with` alone begins
    no transaction; BEGIN IMMEDIATE takes the write lock first, so a busy index waits its timeout.
    """
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        remove(connection, gone)
        put(connection, entries)
        if folder is not None:
            connection.execute("DELETE FROM folder")
            connection.execute("INSERT INTO folder VALUES (?, ?, ?)", folder)


def put(connection: sqlite3.Connection, entries: Iterable[Entry]) -> None:
    """Add or replace entries (inside a transaction: see write)."""
    rows: list[tuple] = []  # (file, position, *message_rows[1:]) of every entry, derived values added at once
    for entry in entries:
        remove(connection, [entry.name])
        conversation = entry.conversation
        if conversation is None:
            connection.execute(
                "INSERT INTO files (name, mtime_ns, size, inode, reason) VALUES (?, ?, ?, ?, ?)",
                (entry.name, *entry.key, entry.reason or "it cannot be read"),
            )
            continue
        summary = conversation.summary(read_only=entry.read_only)
        contents = [str(message.get("content", "")) for message in conversation.messages]
        roles = "".join(_ROLE_LETTERS.get(message.get("role"), "?") for message in conversation.messages)
        file = connection.execute(
            "INSERT INTO files (name, mtime_ns, size, inode, id, title, created_at, updated_at, sort,"
            f" message_count, model, read_only, source, roles) VALUES ({', '.join('?' * 14)})",
            (entry.name, *entry.key, summary.id, summary.title, summary.created_at, summary.updated_at,
             order_of(summary.updated_at), summary.message_count, summary.model, entry.read_only,
             source_key(conversation.extra.get("source")), roles),
        ).lastrowid
        connection.execute("INSERT INTO texts (rowid, title, body) VALUES (?, ?, ?)",
                           (file, summary.title, body(contents)))
        rows.extend((file, position, *row) for position, row in enumerate(message_rows(conversation)))
    derived = derived_values([row[2:] for row in rows])  # one parse for the batch: pandas is slow per call
    connection.executemany(
        f"INSERT INTO insight_rows (file, position, {_ROWS}, {_DERIVED}) VALUES ({', '.join('?' * 18)})",
        [(*row[:2], *row[3:], *more) for row, more in zip(rows, derived, strict=True)],
    )
    by_file: dict[int, list[tuple]] = {}
    for row, more in zip(rows, derived, strict=True):
        by_file.setdefault(row[0], []).append((*row[2:], *more))
    connection.executemany(
        f"INSERT INTO insight_days (file, {_DAYS}) VALUES (?, {', '.join('?' * len(_DAYS.split(', ')))})",
        [(file, *totals) for file, found in by_file.items() for totals in insight_queries.day_totals(found)],
    )


def remove(connection: sqlite3.Connection, names: Iterable[str]) -> None:
    """Drop entries by name (inside a transaction: see write)."""
    for name in names:
        for table, column in _OWNED.items():
            query = f"DELETE FROM {table} WHERE {column} = (SELECT rowid FROM files WHERE name = ?)"
            connection.execute(query, (name,))


@dataclass(frozen=True)
class Scope:
    """Which readable entries a query sees: a read-only one can be hidden (the Flask history once
    its writable copy exists), and only those last updated within some days."""

    hide_read_only: bool = False
    days: tuple = (None, None)

    def where(self) -> tuple[str, list]:
        clauses, values = ["f.reason IS NULL"], []
        if self.hide_read_only:
            clauses.append("NOT f.read_only")
        for bound, operator in zip(day_bounds(self.days), (">=", "<"), strict=True):
            if bound is not None:
                clauses.append(f"f.sort {operator} ?")
                values.append(bound)
        return " AND ".join(clauses), values


def _limits(limit: int | None, offset: int) -> tuple[str, list]:
    return " LIMIT ? OFFSET ?", [-1 if limit is None else limit, offset]


def _summary(row: Sequence) -> ConversationSummary:
    identifier, title, created_at, updated_at, count, model, read_only = row[:7]
    return ConversationSummary(identifier, title, created_at, updated_at, count, model, bool(read_only))


def page(connection: sqlite3.Connection, scope: Scope, limit: int | None = None, offset: int = 0):
    """Summaries newest first (ties: larger id first)."""
    where, values = scope.where()
    tail, more = _limits(limit, offset)
    query = f"SELECT {_SUMMARY} FROM files f WHERE {where} ORDER BY f.sort DESC, f.id DESC{tail}"
    return [_summary(row) for row in connection.execute(query, values + more)]


def count(connection: sqlite3.Connection, scope: Scope) -> int:
    where, values = scope.where()
    return connection.execute(f"SELECT count(*) FROM files f WHERE {where}", values).fetchone()[0]


def problems(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, reason) of every entry that cannot be read, by name."""
    return list(connection.execute("SELECT name, reason FROM files WHERE reason IS NOT NULL ORDER BY name"))


def search(
    connection: sqlite3.Connection, query: str, scope: Scope, limit: int | None = None, offset: int = 0
) -> list[SearchHit]:
    """Entries holding every term, by bm25 (a title counts double), then newest; snippets for these only.

    The ranking reads only FTS5's index (bm25 needs no text); the bodies are read for the page's rows.
    """
    terms = query_terms(query)
    if not terms:
        return [SearchHit(summary, "") for summary in page(connection, scope, limit, offset)]
    where, values = scope.where()
    tail, more = _limits(limit, offset)
    rows = connection.execute(
        f"SELECT {_SUMMARY}, f.roles, f.rowid FROM (SELECT rowid, bm25(texts, 2.0, 1.0) AS score FROM texts"
        f" WHERE texts MATCH ?) t JOIN files f ON f.rowid = t.rowid WHERE {where}"
        f" ORDER BY t.score, f.sort DESC, f.id DESC{tail}",
        [fts5_query(terms), *values, *more],
    ).fetchall()
    shown = json.dumps([row[8] for row in rows])
    bodies = dict(connection.execute(
        "SELECT rowid, body FROM texts WHERE rowid IN (SELECT value FROM json_each(?))", [shown]))
    return [_hit(_summary(row), bodies[row[8]], row[7], terms) for row in rows]


def _hit(summary: ConversationSummary, text: str, roles: str, terms: list[Term]) -> SearchHit:
    parts = text.split(SEPARATOR)
    messages = ((_ROLES.get(letter, "message"), part) for letter, part in zip(roles, parts, strict=False))
    return SearchHit(summary, snippet(summary.title, messages, terms))


def frame(connection: sqlite3.Connection, scope: Scope) -> pd.DataFrame:
    """history.insights.messages_frame of the readable entries, from the stored rows."""
    where, values = scope.where()
    rows = connection.execute(
        f"SELECT f.id, {', '.join('r.' + c for c in _ROWS.split(', '))} FROM insight_rows r"
        f" JOIN files f ON f.rowid = r.file WHERE {where} ORDER BY f.rowid, r.position",
        values,
    )
    return messages_frame(rows)  # `starts` comes back as 0 or 1: the frame's bool column takes it as is


def sources(connection: sqlite3.Connection, scope: Scope) -> set[str]:
    where, values = scope.where()
    query = f"SELECT f.source FROM files f WHERE f.source IS NOT NULL AND {where}"
    return {row[0] for row in connection.execute(query, values)}


_files = sa.table("files", *map(sa.column, ("rowid", "id", "reason")), sa.column("read_only", sa.Boolean))
_rows = sa.table("insight_rows", sa.column("file"), sa.column("starts", sa.Boolean), *map(sa.column, (
    "role", "source", "feedback", "status", "first_question", "question_key")), *(sa.column(name, sa.Integer)
    for name in ("day", "month", "at_us", "latency_ms", "first_token_ms", "total_tokens")))
_days = sa.table("insight_days", *(sa.column(name, sa.Integer) for name in (
    "file", "day", "month", "question_at_us", *insight_queries.DAY_TOTALS)), *map(sa.column, (
    "question", "question_key")))
_SQLITE = sqlite.dialect(paramstyle="qmark")


def insights(connection: sqlite3.Connection, scope: Scope, start, end) -> insight_queries.Insights:
    """The Insights page's figures for these UTC days, aggregated by SQLite (history/insight_queries.py)
    from the day totals, and the percentiles from the partial indexes on the rows."""
    f, r, d = _files.c, _rows.c, _days.c
    row_columns = [*(r[name] for name in insight_queries.NAMES[1:12]), r.first_question.label("question"),
                   r.question_key]
    day_columns = [d[name] for name in ("day", "month", *insight_queries.DAY_TOTALS, "question",
                                        "question_key", "question_at_us")]
    if scope.hide_read_only:  # the Flask history's read-only copy: its rows are left out through the join
        shown = sa.and_(f.reason.is_(None), sa.not_(f.read_only))
        rows = sa.select(f.id.label("conversation"), *row_columns).select_from(
            _rows.join(_files, f.rowid == r.file)).where(shown).subquery("m")
        days = sa.select(f.id.label("conversation"), *day_columns).select_from(
            _days.join(_files, f.rowid == d.file)).where(shown).subquery("d")
    else:  # only readable entries have rows: the plain tables, so SQLite reads them through their indexes
        rows = sa.select(r.file.label("conversation"), *row_columns).subquery("m")
        days = sa.select(d.file.label("conversation"), *day_columns).subquery("d")
    messages = insight_queries.Messages(rows, days=days)
    return insight_queries.insights(_Runner(connection), messages, start, end)


class _Runner:
    """SQLAlchemy queries run on the index's own sqlite3 connection, each compiled once per page."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.compiled: dict[int, tuple[sa.Select, str, object]] = {}

    def __call__(self, query: sa.Select, values: dict | None = None) -> list[tuple]:
        known = self.compiled.get(id(query))
        if known is None or known[0] is not query:
            compiled = query.compile(dialect=_SQLITE)
            known = self.compiled[id(query)] = (query, str(compiled), compiled)
        _, text, compiled = known
        params = compiled.construct_params(values)
        return self.connection.execute(text, [params[name] for name in compiled.positiontup or ()]).fetchall()
