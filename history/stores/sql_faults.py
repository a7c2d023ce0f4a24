"""The one place the database store turns SQLAlchemy's errors into history/errors.py's exceptions, so a
page tells the user whether the database is down, busy, full or refusing writes, and what to do."""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy as sa

from history.errors import (
    DatabaseUnreachable,
    HistoryBusy,
    HistoryFull,
    HistoryReadOnly,
    HistoryUnavailable,
)

CHECK = "Check that the database server is up and that [connections.history] in the secrets points at it"
# PostgreSQL SQLSTATEs: query_canceled (statement_timeout); lock_not_available (lock_timeout),
# serialization_failure, deadlock_detected; disk_full; read_only_sql_transaction (a standby),
# insufficient_privilege.
_STATEMENT_TIMEOUT = "57014"
_LOCKED = frozenset({"55P03", "40001", "40P01"})
_FULL = frozenset({"53100"})
_READ_ONLY = frozenset({"25006", "42501"})


def where(url: sa.URL) -> str:
    """The database as a user recognises it, without user name or password: a file, or host:port/name."""
    if url.get_backend_name() == "sqlite":
        return url.database or "in memory"
    return f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}/{url.database or ''}"


def _code(error: sa.exc.SQLAlchemyError) -> str:
    """The driver's error code: PostgreSQL's SQLSTATE, or SQLite's SQLITE_* name; "" when there is none."""
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else None
    if isinstance(original, psycopg.Error):
        return original.sqlstate or ""
    if isinstance(original, sqlite3.Error):
        return original.sqlite_errorname or ""
    return ""


def is_locked(error: sa.exc.SQLAlchemyError) -> bool:
    """Whether the database refused because another transaction holds a lock it needs."""
    code = _code(error)
    return code in _LOCKED or code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _reason(error: sa.exc.SQLAlchemyError) -> str:
    """The driver's own first line (never the URL, which may hold a password)."""
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    lines = str(original).strip().splitlines() or [type(original).__name__]
    return lines[0][:200]


def unanswered(url: sa.URL, seconds: float) -> DatabaseUnreachable:
    """A server that took a connection but never answered (frozen, or a stalled network)."""
    return DatabaseUnreachable(
        f"The history database ({where(url)}) cannot be reached: it did not answer within {seconds:.0f} s, "
        f"and nothing was changed. {CHECK}, then try again."
    )


def database_error(url: sa.URL, error: sa.exc.SQLAlchemyError) -> HistoryUnavailable:
    """The history error, with its message for the user, for an error SQLAlchemy raised."""
    code, reason, place = _code(error), _reason(error), where(url)
    if isinstance(error, sa.exc.TimeoutError):  # the pool had no free connection in time
        return HistoryBusy(
            "The history database is busy: every connection to it is in use; try again in a moment."
        )
    if code == _STATEMENT_TIMEOUT:
        return HistoryBusy(
            "The history database is too busy to answer in time: the request was cut off and nothing was "
            "changed; try again in a moment."
        )
    if is_locked(error):
        return HistoryBusy(
            "The history database is busy: another window or server is saving this conversation right now; "
            "try again in a moment."
        )
    if code in _FULL or code.startswith("SQLITE_FULL"):
        return HistoryFull(
            f"The disk of the history database ({place}) is full: the change was not saved. "
            "Free some space there, then try again."
        )
    if code in _READ_ONLY or code.startswith("SQLITE_READONLY"):
        return HistoryReadOnly(
            f"The history database ({place}) refuses writes ({reason}): the change was not saved. "
            "Check that the database user in [connections.history] may write to it, then try again."
        )
    if isinstance(error, sa.exc.DBAPIError) and (
        error.connection_invalidated or isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)
    ):
        return DatabaseUnreachable(
            f"The history database ({place}) cannot be reached ({reason}), and nothing was changed. "
            f"{CHECK}, then try again."
        )
    return HistoryUnavailable(
        f"The history database ({place}) refused the request ({reason}): nothing was changed. "
        "Check the database and [connections.history], then try again."
    )
