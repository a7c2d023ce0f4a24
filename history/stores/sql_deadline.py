"""A deadline the client keeps on each database transaction, for a server that takes connections and
data but never answers (a stopped process, a stalled network): neither its statement_timeout nor TCP
keepalives end that wait, so past the deadline the transaction's connection is shut down, and the call
fails instead of hanging the page.

One background thread keeps every deadline. A transaction's deadline moves on at each statement it
starts (a live server cuts a statement off at statement_timeout first). A transaction still waiting
for a connection when its deadline passes (pre-ping of a pooled one) gets the engine's idle
connections shut down, the ones that ping is waiting on; it may then open no new connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.engine import Engine

WATCHED_DRIVERS = frozenset({"psycopg", "psycopg2"})  # drivers whose connections have fileno()


class Expired(Exception):
    """The transaction's deadline passed while it waited for a connection: do not open another."""


@dataclass(eq=False)
class _Pool:
    """What the watcher knows of one engine: its idle pooled connections."""

    error: type[Exception]  # the driver's base error, raised by fileno() on a closed connection
    idle: set = field(default_factory=set)


@dataclass(eq=False)
class Watch:
    """One transaction's deadline; `fired` once it passed and its connections were shut down."""

    seconds: float
    pool: _Pool | None
    deadline: float = 0.0
    connections: list = field(default_factory=list)
    fired: bool = False


_guard = threading.Condition()
_watches: set[Watch] = set()
_pools: weakref.WeakKeyDictionary[Engine, _Pool] = weakref.WeakKeyDictionary()


class _Current(threading.local):
    watch: Watch | None = None  # the watch of this thread's transaction, if it is in one


_current = _Current()


@dataclass
class _Watcher:
    """The thread that keeps every deadline, started on first use."""

    thread: threading.Thread | None = None
    wake_at: float | None = None  # when it wakes next; None: only when notified


_watcher = _Watcher()


def _forget_in_child() -> None:
    """A forked child has no watcher thread and a copy of the lock as the fork found it: start afresh."""
    global _guard, _watcher
    _guard, _watcher = threading.Condition(), _Watcher()
    _watches.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _pool_for(engine: Engine) -> _Pool | None:
    """The engine's watch state, set up on first use; None for drivers it cannot watch (SQLite)."""
    if engine.dialect.driver not in WATCHED_DRIVERS:
        return None
    with _guard:
        pool = _pools.get(engine)
        if pool is None:
            pool = _pools[engine] = _Pool(engine.dialect.loaded_dbapi.Error)
            _listen(engine, pool)
        return pool


def _listen(engine: Engine, pool: _Pool) -> None:
    def checkin(dbapi_connection, _record) -> None:
        if dbapi_connection is not None:
            with _guard:
                pool.idle.add(dbapi_connection)

    def checkout(dbapi_connection, _record, _proxy) -> None:
        with _guard:
            pool.idle.discard(dbapi_connection)
            watch = _current.watch
            if watch is not None and watch.pool is pool:
                watch.connections.append(dbapi_connection)

    def gone(dbapi_connection, *_args) -> None:
        with _guard:
            pool.idle.discard(dbapi_connection)

    def statement(*_args) -> None:
        watch = _current.watch
        if watch is not None and watch.pool is pool:
            with _guard:
                watch.deadline = time.monotonic() + watch.seconds

    def connecting(*_args) -> None:
        watch = _current.watch
        if watch is not None and watch.fired:
            raise Expired

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)
    for name in ("close", "detach", "invalidate", "soft_invalidate"):
        event.listen(engine, name, gone)
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "do_connect", connecting)


def _shut_down(pool: _Pool, dbapi_connection) -> None:
    """End the connection's socket (not its file descriptor, which the driver still owns)."""
    try:
        fd = dbapi_connection.fileno()
    except pool.error:
        return  # already closed
    with contextlib.suppress(OSError), socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)


def _fire(watch: Watch) -> None:
    """Shut down what the transaction waits on: its connections, or the idle ones its pre-ping may use."""
    watch.fired = True
    for dbapi_connection in watch.connections or list(watch.pool.idle):
        _shut_down(watch.pool, dbapi_connection)


def _keep_deadlines() -> None:
    """The watcher thread: sleep until the next deadline, fire those that passed, repeat."""
    with _guard:
        while True:
            now = time.monotonic()
            for watch in [w for w in _watches if not w.fired and w.deadline <= now]:
                _fire(watch)
            upcoming = [w.deadline for w in _watches if not w.fired]
            _watcher.wake_at = min(upcoming) if upcoming else None
            _guard.wait(None if _watcher.wake_at is None else _watcher.wake_at - now)


@contextlib.contextmanager
def watch(engine: Engine, seconds: float) -> Iterator[Watch]:
    """Keep a deadline of `seconds` on what this thread does with the engine inside the block."""
    pool = _pool_for(engine)
    current = Watch(seconds, pool, time.monotonic() + seconds)
    if pool is None:
        yield current  # nothing to watch: it never fires
        return
    outer = _current.watch
    _current.watch = current
    with _guard:
        if _watcher.thread is None:
            _watcher.thread = threading.Thread(target=_keep_deadlines, name="history-deadlines", daemon=True)
            _watcher.thread.start()
        _watches.add(current)
        if _watcher.wake_at is None or current.deadline < _watcher.wake_at:
            _guard.notify()  # else the watcher wakes in time anyway: deadlines only move later
    try:
        yield current
    finally:
        with _guard:
            _watches.discard(current)
        _current.watch = outer
