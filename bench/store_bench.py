"""History store at 10,000 conversations: the JSON folder against PostgreSQL and SQLite.

Run: .venv/bin/python -m bench.store_bench [--conversations 10000] [--messages 20] [--turns 200] [--dir DIR]
Baseline, measured in the same run: the JSON folder (history/stores/json_store.py) holding the same
conversations.
PostgreSQL: the server at CHATBOT_TEST_POSTGRES_URL, else a throwaway one that the bench starts and stops
with .ci/postgres.sh (under its own TMPDIR, so a server the tests use is left alone); the bench works in a
database of its own there, dropped at the end. SQLite: a file in the temp dir.
Targets (the JSON folder's at 10,000, docs/benchmarks.md): a turn < 15 ms (100× faster than the Flask
design's 1.49 s), list() warm < 150 ms and cold < 1 s. Creating and get() have none.
The folder is written with JsonHistoryStore's encoder (no fsync) and listed once, as bench.history_bench
does; the databases get the rows SqlHistoryStore.create() writes (history/stores/sql_rows.py's helpers)
in bulk INSERTs, checked against a conversation saved through create().
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench import history_data as data
from bench import report as rp
from bench.history_bench import save_turn
from history.models import Conversation, make_message
from history.stores import folder_index, sql_derived, sql_schema
from history.stores.backend import open_store
from history.stores.base import HistoryStore
from history.stores.sql_rows import conversation_values, message_values
from history.stores.sql_schema import conversations, messages, transaction
from history.stores.sql_store import SqlHistoryStore
from tests.backends import POSTGRES_ENV

REPO = Path(__file__).resolve().parents[1]
BATCH = 500  # conversations per bulk INSERT
NAMES = {"json": "JSON folder (baseline)", "postgresql": "PostgreSQL", "sqlite": "SQLite"}
COLD, FRESH, WARM, GETS, CREATES = 10, 3, 20, 100, 100
TARGETS = {"turn": 0.015, "list_warm": 0.150, "list_cold": 1.0, "list_fresh": 1.0}
CHECK_OWNER = "bench-check"


def fill_database(store: SqlHistoryStore, saved: list[Conversation]) -> None:
    """The rows create() would write for these conversations, BATCH conversations a statement."""
    with transaction(store.engine, write=True) as connection:
        for start in range(0, len(saved), BATCH):
            batch = saved[start : start + BATCH]
            owner = store.owner
            rows = [{"owner": owner, "id": c.id, "revision": 1, **conversation_values(c)} for c in batch]
            inserted = sa.insert(conversations).returning(conversations.c.id, conversations.c.serial)
            serials = dict(connection.execute(inserted, rows).all())
            connection.execute(
                sa.insert(messages),
                [
                    {"conversation_serial": serials[c.id], "position": k, **message_values(message)}
                    for c in batch
                    for k, message in enumerate(c.messages)
                ],
            )
            for c in batch:  # search and Insights
                sql_derived.save(connection, serials[c.id], owner, None, sql_derived.derived(c))
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")  # what autovacuum does after a load this size


def check_fill(store: SqlHistoryStore, size: int) -> None:
    """c000000 saved through create() (another owner) has the same rows as the bulk-filled one."""
    SqlHistoryStore(store.engine, CHECK_OWNER).create(data.conversation(0, size))

    def rows(owner: str) -> tuple[list, list]:
        where = (conversations.c.owner == owner, conversations.c.id == "c000000")
        head = sa.select(conversations).where(*where)
        tail = sa.select(messages).join(conversations).where(*where).order_by(messages.c.position)
        with transaction(store.engine, write=False) as connection:
            found = [connection.execute(q).mappings().all() for q in (head, tail)]
        drop = {"serial", "owner", "conversation_serial"}
        return tuple([{k: v for k, v in row.items() if k not in drop} for row in part] for part in found)

    bulk, created = rows(store.owner), rows(CHECK_OWNER)
    with transaction(store.engine, write=True) as connection:
        checked = sa.select(conversations.c.serial).where(conversations.c.owner == CHECK_OWNER)
        sql_derived.remove(connection, connection.scalars(checked).all())  # SQLite's FTS5 rows do not cascade
        connection.execute(sa.delete(conversations).where(conversations.c.owner == CHECK_OWNER))  # cascades
    if bulk != created or len(bulk[1]) != size:
        raise AssertionError(f"{store!r}: the bulk rows differ from what create() writes")


@contextmanager
def postgres_database(base: Path) -> Iterator[tuple[str, str]]:
    """(URL of a new database, where the server came from); the database is dropped afterwards."""
    server = os.environ.get(POSTGRES_ENV, "").strip()
    env = {**os.environ, "TMPDIR": str(base)}
    script = ["bash", str(REPO / ".ci" / "postgres.sh")]
    started = not server
    origin = "started by the bench with .ci/postgres.sh" if started else POSTGRES_ENV
    if started:
        base.chmod(0o755)  # the server runs as the postgres user, in a folder under this one
        server = subprocess.run(script, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    server = sql_schema.normalize_url(server)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"chatbot_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            yield url, origin
        finally:
            forget_engine(url)
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
        if started:
            subprocess.run([*script, "stop"], env=env, check=False)


def forget_engine(url: str) -> None:
    """What a restarted server lacks: the engine, its pooled connections and the schema check."""
    engine = sql_schema._engines.pop(sql_schema.normalize_url(url), None)
    if engine is not None:
        engine.dispose()


def forget(target: str) -> None:
    """Drop what this process holds for the store (the folder's index; engine, connections, schema check)."""
    folder_index.forget_all()
    if "://" in target:
        forget_engine(target)


def probe(target: str) -> None:
    """Run in a new interpreter, after its imports: open the store, list it once, print the seconds."""
    started = time.perf_counter()
    open_store(target).list()
    print(json.dumps(time.perf_counter() - started))


def fresh(target: str) -> list[float]:
    command = [sys.executable, "-m", "bench.store_bench", "--probe", target]
    return [
        json.loads(subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout)
        for _ in range(FRESH)
    ]


def create_new(store: HistoryStore) -> None:
    """What ChatService does with a new conversation's first message: exists(), then create()."""
    conversation = Conversation(model="bench-model")
    if not store.exists(conversation.id):
        conversation.add(make_message("user", "A new question to start a conversation with?"))
        store.create(conversation)


def interleaved(
    targets: dict[str, str], rounds: int, action: Callable[[str, int], object], before=None
) -> dict[str, list[float]]:
    """Seconds per call for each store, stores taking turns call by call so load hits them alike;
    before(name) runs untimed ahead of each call."""
    times: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(rounds):
        for name in targets:
            if before is not None:
                before(name)
            times[name] += rp.timed(lambda name=name, i=i: action(name, i), 1)
    return times


def measure(targets: dict[str, str], count: int, turns: int) -> dict[str, dict]:
    def cold(name: str, _: int) -> None:
        open_store(targets[name]).list()

    r: dict[str, dict] = {}
    r["list_cold"] = interleaved(targets, COLD, cold, before=lambda name: forget(targets[name]))
    r["list_fresh"] = {name: fresh(target) for name, target in targets.items()}
    for target in targets.values():
        forget(target)
    stores = {name: open_store(target) for name, target in targets.items()}
    for store in stores.values():
        store.list()  # from here on this process is a warm server
    r["list_warm"] = interleaved(targets, WARM, lambda name, _: stores[name].list())
    changed = [f"c{i * 7919 % count:06d}" for i in range(turns)]  # 7919 is prime: distinct ids
    saved_to = set(changed)
    untouched = [cid for cid in (f"c{n:06d}" for n in range(count)) if cid not in saved_to][:GETS]
    r["get"] = interleaved(targets, GETS, lambda name, i: stores[name].get(untouched[i]))
    r["turn"] = interleaved(targets, turns, lambda name, i: save_turn(stores[name], changed[i]))
    r["create"] = interleaved(targets, CREATES, lambda name, _: create_new(stores[name]))
    # Every store now holds the same: `turns` conversations of 22 messages, CREATES of 1, the rest of 20.
    expected = sorted([22] * turns + [1] * CREATES + [20] * (count - turns))
    for name, store in stores.items():
        if sorted(summary.message_count for summary in store.list()) != expected:
            raise AssertionError(f"{NAMES[name]} does not hold what the others do")
    return r


ROWS = [
    ("turn", "Save a turn: user message, then reply (exists() + append() each, as ChatService)"),
    ("create", "Create a new conversation with its first message (exists() + create())"),
    ("list_warm", "`list()` warm: same store object, nothing changed"),
    ("list_cold", "`list()` cold: new store object, process state forgotten, + first `list()`"),
    ("list_fresh", "`list()` cold in a fresh interpreter: open + first `list()` (after imports)"),
    ("get", "`get()` of one 20-message conversation (a different one each time)"),
]
WHY = {
    "turn": "each turn is four transactions (exists, append, exists, append)",
    "list_warm": "list() reads and decodes every summary row each time",
    "list_cold": "connecting and checking the schema, then the full listing",
    "list_fresh": "connecting and checking the schema, then the full listing",
}


def report(r: dict[str, dict], names: list[str]) -> None:
    headers = ["Operation"]
    for name in names:
        headers += [NAMES[name]] + ([] if name == "json" else ["Baseline ÷ this"])
    headers += ["Target", "Result (" + " / ".join(NAMES[n].split(" (")[0] for n in names) + ")"]
    rows = []
    for key, label in ROWS:
        base = rp.median(r[key]["json"])
        row = [label]
        for name in names:
            row.append(rp.spread(r[key][name]))
            if name != "json":
                row.append(f"{base / rp.median(r[key][name]):.2f}×")
        limit = TARGETS.get(key)
        if limit is None:
            row += ["—", "—"]
        else:
            row.append(f"under {rp.ms(limit)}")
            row.append(" / ".join(rp.verdict(rp.median(r[key][n]) < limit, WHY[key]) for n in names))
        rows.append(row)
    title = "History store: JSON folder vs PostgreSQL and SQLite (median, p90, n)"
    rp.section(title, rp.table(headers, rows))


def versions(pg_url: str, origin: str) -> str:
    engine = sql_schema.engine_for(pg_url)
    with engine.connect() as connection:
        server = connection.exec_driver_sql("SHOW server_version").scalar()
        fsync = connection.exec_driver_sql("SHOW fsync").scalar()
        commit = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
    return (
        f"PostgreSQL {server} on 127.0.0.1 ({origin}; fsync={fsync}, synchronous_commit={commit}); "
        f"SQLite {sqlite3.sqlite_version} (WAL); SQLAlchemy {sa.__version__}"
    )


def fill_all(targets: dict[str, str], count: int, size: int) -> None:
    """The same conversations in each store; nothing of them stays in memory for the measurements."""
    started = time.perf_counter()
    data.fill(Path(targets["json"]), count, size)
    saved = [data.conversation(n, size) for n in range(count)]
    for name in ("postgresql", "sqlite"):
        store = SqlHistoryStore(targets[name])
        fill_database(store, saved)
        check_fill(store, size)
    del saved
    gc.collect()
    seconds = time.perf_counter() - started
    print(f"{count:,} conversations written to each store in {seconds:.0f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores (default: temp)")
    parser.add_argument("--probe", metavar="TARGET", help=argparse.SUPPRESS)
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    base = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.dir))
    try:
        with postgres_database(base) as (pg_url, origin):
            sqlite_url = f"sqlite:///{urllib.parse.quote(str(base / 'history.db'))}"
            targets = {"json": str(base / "history"), "postgresql": pg_url, "sqlite": sqlite_url}
            fill_all(targets, args.conversations, args.messages)
            rp.wait_for_quiet(args)
            print(rp.machine())
            print(versions(pg_url, origin))
            results = measure(targets, args.conversations, args.turns)
            forget_engine(sqlite_url)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results, list(NAMES))
    print(rp.load_average())


if __name__ == "__main__":
    main()
