"""What the listing, search and Insights need from a set of conversations, in one SQLite database.

The JSON folder keeps it beside its files (`.index.sqlite`, history/stores/folder_index.py keeps it in
step with them); the in-memory store keeps one in memory. The conversations stay the only truth: the
index holds, per conversation, its summary, an FTS5 document of its title and messages (bm25
ranking), and the rows Insights aggregates (history.insights.message_rows), all written in one
transaction so they never disagree. It may be deleted at any time; it is built again from the files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from history.insights import message_rows, messages_frame
from history.listing import day_bounds
from history.models import Conversation, ConversationSummary, order_of, source_key
from history.search import FTS5_TOKENIZE, SEPARATOR, SearchHit, Term, body, fts5_query, query_terms, snippet

VERSION = 1  # PRAGMA user_version; an index of another version is built again
StatKey = tuple[int, int, int]
_ROLE_LETTERS = {"system": "s", "user": "u", "assistant": "a"}
_ROLES = {letter: role for role, letter in _ROLE_LETTERS.items()}
_SUMMARY = "f.id, f.title, f.created_at, f.updated_at, f.message_count, f.model, f.read_only"
_ROWS = ("created_at, role, source, latency_ms, first_token_ms, prompt_tokens, completion_tokens, "
         "total_tokens, feedback, first_question, status, starts")
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
CREATE TABLE insight_rows (file INTEGER NOT NULL, position INTEGER NOT NULL, {_ROWS},
                           PRIMARY KEY (file, position)) WITHOUT ROWID;
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
    return {"files", "texts", "insight_rows"} <= names


def keys(connection: sqlite3.Connection, names: Iterable[str] | None = None) -> dict[str, StatKey]:
    """The stat key of every entry (or of the named ones)."""
    if names is None:
        rows = connection.execute("SELECT name, mtime_ns, size, inode FROM files")
        return {name: (m, s, i) for name, m, s, i in rows}
    found = {}
    for name in names:
        row = connection.execute("SELECT mtime_ns, size, inode FROM files WHERE name = ?", (name,)).fetchone()
        if row is not None:
            found[name] = tuple(row)
    return found


def put(connection: sqlite3.Connection, entries: Iterable[Entry]) -> None:
    """Add or replace entries (call inside a transaction)."""
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
        connection.executemany(
            f"INSERT INTO insight_rows (file, position, {_ROWS}) VALUES ({', '.join('?' * 14)})",
            [(file, position, *row[1:]) for position, row in enumerate(message_rows(conversation))],
        )


def remove(connection: sqlite3.Connection, names: Iterable[str]) -> None:
    """Drop entries by name (call inside a transaction)."""
    for name in names:
        row = connection.execute("SELECT rowid FROM files WHERE name = ?", (name,)).fetchone()
        if row is None:
            continue
        connection.execute("DELETE FROM texts WHERE rowid = ?", row)
        connection.execute("DELETE FROM insight_rows WHERE file = ?", row)
        connection.execute("DELETE FROM files WHERE rowid = ?", row)


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
        start, end = day_bounds(self.days)
        if start is not None:
            clauses.append("f.sort >= ?")
            values.append(start)
        if end is not None:
            clauses.append("f.sort < ?")
            values.append(end)
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
    """Entries holding every term, by bm25 (a title counts double), then newest; snippets for these only."""
    terms = query_terms(query)
    if not terms:
        return [SearchHit(summary, "") for summary in page(connection, scope, limit, offset)]
    where, values = scope.where()
    tail, more = _limits(limit, offset)
    rows = connection.execute(
        f"SELECT {_SUMMARY}, t.body, f.roles FROM texts t JOIN files f ON f.rowid = t.rowid"
        f" WHERE texts MATCH ? AND {where} ORDER BY bm25(texts, 2.0, 1.0), f.sort DESC, f.id DESC{tail}",
        [fts5_query(terms), *values, *more],
    ).fetchall()
    return [_hit(row, terms) for row in rows]


def _hit(row: Sequence, terms: list[Term]) -> SearchHit:
    summary = _summary(row)
    text, roles = row[7], row[8]
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
    return messages_frame((*row[:-1], bool(row[-1])) for row in rows)


def sources(connection: sqlite3.Connection, scope: Scope) -> set[str]:
    where, values = scope.where()
    query = f"SELECT f.source FROM files f WHERE f.source IS NOT NULL AND {where}"
    return {row[0] for row in connection.execute(query, values)}
