"""The database store's pages, search and Insights at 100,000 conversations, against the JSON folder.

Run: .venv/bin/python -m bench.index_sql_bench [--conversations 100000] [--cold-runs 4] [--warm-runs 7]
     [--saves 30] [--no-postgres]
Baseline, measured in the same run: the JSON folder with its SQLite index (bench/index_bench.py's
folder, generated once per seed into /tmp/bench-data), holding the same conversations. SQLite: a
file filled once per seed beside it and reused. PostgreSQL: a throwaway server started and stopped
with .ci/postgres.sh under its own TMPDIR, filled each run. Both are filled with the rows create()
writes, derived search and Insights rows included (bench/store_bench.py's fill_database), in
transactions of FILL_BATCH conversations. The same probe (bench/index_probe.py) times every store
in fresh processes, stores taking turns. Targets: as bench/index_bench.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import sqlalchemy as sa

from bench import index_data as data
from bench import report as rp
from bench.index_bench import COLD_OPS, REPO, Probes, restore
from bench.index_tables import LABELS, TARGETS, ratio
from bench.store_bench import fill_database
from history.stores import sql_schema
from history.stores.sql_store import SqlHistoryStore

FILL_BATCH = 10_000  # conversations per transaction while filling
SAVE_ID = "c000002"  # untouched by bench/index_bench.py's saves
NAMES = {"json": "JSON folder (baseline)", "sqlite": "SQLite", "postgresql": "PostgreSQL"}


def fill(url: str, total: int, messages: int, seed: int) -> float:
    """Every generated conversation into the database at `url`; seconds taken."""
    started = time.perf_counter()
    store = SqlHistoryStore(url)
    for start in range(0, total, FILL_BATCH):
        batch = [
            data.conversation(n, total, messages, seed) for n in range(start, min(total, start + FILL_BATCH))
        ]
        fill_database(store, batch)
        print(
            f"  {min(total, start + FILL_BATCH):,} of {total:,} into {store.engine.dialect.name}",
            file=sys.stderr,
            flush=True,
        )
    if store.count() != total:
        raise AssertionError(f"{url} holds {store.count():,} conversations, not {total:,}")
    if store.engine.dialect.name == "postgresql":  # as autovacuum does after a load this size (its insert
        # threshold, PostgreSQL 13+): the visibility map lets the Insights percentiles scan their index only
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
    forget(url)
    return time.perf_counter() - started


def forget(url: str) -> None:
    engine = sql_schema._engines.pop(sql_schema.normalize_url(url), None)
    if engine is not None:
        engine.dispose()


def unsave(url: str, messages: int) -> None:
    """Drop what the saves appended to SAVE_ID in the cached SQLite file, so the next run reads the same."""
    store = SqlHistoryStore(url)
    count = len(store.get(SAVE_ID).messages)
    if count > messages:
        store.replace_tail(SAVE_ID, messages, expected_count=count)
    forget(url)


def sqlite_url(args: argparse.Namespace) -> tuple[str, float | None]:
    """The cached SQLite file (filled now if missing) and the seconds filling it took, if it was."""
    version = f"v{sql_schema.SCHEMA_VERSION}"  # a file of another schema version is not reused
    path = data.CACHE / f"sqlite-{version}-{args.conversations}x{args.messages}-seed{args.seed}.db"
    done = path.with_suffix(".done")
    url = f"sqlite:///{urllib.parse.quote(str(path))}"
    if done.exists():
        return url, None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    seconds = fill(url, args.conversations, args.messages, args.seed)
    done.write_text(f"seed={args.seed}\n", encoding="utf-8")
    return url, seconds


class Postgres:
    """A throwaway server (.ci/postgres.sh) with one new database, stopped on exit."""

    def __init__(self) -> None:
        self.env = {**os.environ, "TMPDIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-postgres")}
        Path(self.env["TMPDIR"]).mkdir(mode=0o755, exist_ok=True)
        self.script = ["bash", str(REPO / ".ci" / "postgres.sh")]

    def __enter__(self) -> str:
        out = subprocess.run(
            [*self.script, "start"], env=self.env, check=True, stdout=subprocess.PIPE, text=True
        )
        server = sql_schema.normalize_url(out.stdout.strip())
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"chatbot_bench_{secrets.token_hex(4)}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            self.version = connection.exec_driver_sql("SHOW server_version").scalar()
        admin.dispose()
        return sa.make_url(server).set(database=name).render_as_string(hide_password=False)

    def __exit__(self, *_: object) -> None:
        subprocess.run([*self.script, "stop"], env=self.env, check=False)


def measure(probe: Probes, targets: dict[str, str], args: argparse.Namespace) -> dict:
    cold: dict = {key: {name: [] for name in targets} for key, _ in COLD_OPS}
    for run in range(args.cold_runs):
        for key, command in COLD_OPS:
            for name, target in targets.items():
                cold[key][name].append(probe("new", target, *command))
        print(f"  cold runs {run + 1}/{args.cold_runs} done", file=sys.stderr, flush=True)
    queries = json.dumps(data.QUERIES)
    warm = {
        name: probe("new", target, "warm", str(args.warm_runs), queries) for name, target in targets.items()
    }
    saves = probe(
        "new", targets["json"], "save", str(args.saves), *(f"{t}:{SAVE_ID}" for t in targets.values())
    )
    return {
        "cold": cold,
        "warm": warm,
        "save": {name: saves["samples"][f"{t}:{SAVE_ID}"] for name, t in targets.items()},
    }


def report(r: dict, names: list[str], n: int) -> None:
    headers = ["Operation"]
    for name in names:
        headers += [NAMES[name]] + ([] if name == "json" else [f"{NAMES[name]} ÷ JSON"])
    headers += ["Target", "Result (" + " / ".join(NAMES[x].split(" (")[0] for x in names) + ")"]
    rows = []

    def row(label: str, samples: dict[str, list[float]], limit: float | None) -> None:
        cells = [label]
        for name in names:
            cells.append(rp.spread(samples[name]))
            if name != "json":
                cells.append(ratio(rp.median(samples[name]), rp.median(samples["json"])))
        if limit is None:
            cells += ["—", "—"]
        else:
            cells.append(f"under {rp.ms(limit)}")
            cells.append(" / ".join(rp.verdict(rp.median(samples[x]) < limit) for x in names))
        rows.append(cells)

    for key, label in LABELS.items():
        warm_limit, cold_limit = TARGETS[key]
        row(f"{label}, warm", {x: r["warm"][x]["samples"][key] for x in names}, warm_limit)
        row(f"{label}, cold", {x: [c["work_s"] for c in r["cold"][key][x]] for x in names}, cold_limit)
    row(
        "Insights page data (store.insights()), fresh process",
        {x: [c["work_s"] for c in r["cold"]["insights"][x]] for x in names},
        1.0,
    )
    row(
        "Insights page data (store.insights()), warm",
        {x: r["warm"][x]["samples"]["insights"] for x in names},
        None,
    )
    row("Saving a turn: `exists()` + `append()` of one user message", r["save"], None)
    title = f"Database stores at {n:,} conversations against the JSON folder: warm and cold — median, p90"
    rp.section(title, rp.table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--cold-runs", type=int, default=4)
    parser.add_argument("--warm-runs", type=int, default=7)
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    probe = Probes(REPO)  # only the new design: a database has no earlier index files to compare
    root = data.folder(args.conversations, args.messages, args.seed)
    url, filled = sqlite_url(args)
    targets = {"json": str(root), "sqlite": url}
    fills = [f"SQLite filled in {filled:.0f} s" if filled else "SQLite file reused"]
    postgres = None if args.no_postgres else Postgres()
    try:
        if postgres is not None:
            targets["postgresql"] = postgres.__enter__()
            fills.append(
                f"PostgreSQL {postgres.version} filled in "
                f"{fill(targets['postgresql'], args.conversations, args.messages, args.seed):.0f} s"
            )
        restore(root, args.conversations, args.messages, args.seed, [SAVE_ID])
        rp.wait_for_quiet(args)
        print(rp.machine())
        print(
            f"Stores: {root}; {url}; "
            + "; ".join(fills)
            + f" ({args.conversations:,} × {args.messages}, seed {args.seed})"
        )
        started = time.perf_counter()
        results = measure(probe, targets, args)
    finally:
        if postgres is not None:
            postgres.__exit__()
    restore(root, args.conversations, args.messages, args.seed, [SAVE_ID])
    unsave(url, args.messages)
    report(results, list(targets), args.conversations)
    print(f"Measured in {time.perf_counter() - started:.0f} s. {rp.load_average()}")


if __name__ == "__main__":
    main()
