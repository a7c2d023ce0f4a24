"""Insights at 10,000 conversations of 20 messages: the cached message frame and the figures.

Run: .venv/bin/python -m bench.insights_bench [--conversations 10000] [--messages 20] [--dir DIR]
Baseline, measured in the same run: read every file and build the frame from scratch, on every call.
Target: every step of the page takes under 1 s at 10,000 conversations.
The folder is written as JsonHistoryStore writes it (its encoder; no fsync, to save minutes), then
listed once so .index.json exists as in a deployment; the changes go through JsonHistoryStore.append.
Cold is measured without .insights-index (deleted first), with it, with it and 10 files changed
since it was written, and in a fresh interpreter with it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from bench import history_data as data
from bench.insights_data import DAYS, answer, fill
from bench.report import (
    add_quiet_options,
    load_average,
    machine,
    median,
    ms,
    section,
    spread,
    table,
    verdict,
    wait_for_quiet,
)
from history import insights, insights_cache, summary_cache
from history.models import make_message
from history.stores.atomic import write_atomic
from history.stores.json_store import JsonHistoryStore, read_file

REPEAT = 5
FRESH_RUNS = 3  # fresh interpreters, each paying the imports
REPO = Path(__file__).resolve().parents[1]
CHANGED = 10  # files rewritten before each "after a change" sample
TARGET = 1.0  # seconds


def new_process() -> None:
    """Forget what this process holds in memory, as a restarted server would have (files stay cached)."""
    summary_cache.forget_all()
    insights_cache.forget_all()


def figures(frame: pd.DataFrame) -> None:
    insights.daily_activity(frame)
    insights.reply_times(frame)
    insights.feedback_by_day(frame)
    insights.answer_sources(frame)
    insights.top_first_questions(frame)
    insights.headline(frame)


def baseline(root: Path) -> pd.DataFrame:
    """No cache: read and validate every file, build the frame."""
    return insights.messages_frame(read_file(path)[0] for path in sorted(root.glob("[!.]*.json")))


def timed_cpu(action, repeat: int = REPEAT, before=None) -> dict[str, list[float]]:
    """Wall-clock and CPU seconds per call; `before` runs untimed ahead of each call."""
    samples: dict[str, list[float]] = {"wall": [], "cpu": []}
    for _ in range(repeat):
        if before:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        samples["cpu"].append(time.process_time() - cpu)
        samples["wall"].append(time.perf_counter() - wall)
    return samples


# Run in a fresh interpreter: the imports, then the first insight_rows(), as after a server restart.
PROBE = """
import json, sys, time
started = time.perf_counter()
from history.insights_cache import cache_for, insight_rows
from history.stores.json_store import JsonHistoryStore
imported, cpu = time.perf_counter(), time.process_time()
store = JsonHistoryStore(sys.argv[1])
insight_rows(store)
wall, cpu = time.perf_counter() - imported, time.process_time() - cpu
stats = cache_for(store.root).stats
print(json.dumps([imported - started, wall, cpu, stats.parsed, stats.index_loaded]))
"""


def fresh(root: Path) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"wall": [], "cpu": [], "imports": []}
    for _ in range(FRESH_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(root)], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        imports, wall, cpu, parsed, loaded = json.loads(out)
        if parsed or not loaded:
            raise AssertionError(f"a fresh interpreter read {parsed} files (index loaded: {loaded})")
        samples["imports"].append(imports)
        samples["wall"].append(wall)
        samples["cpu"].append(cpu)
    return samples


def expect(cache: insights_cache.InsightCache, parsed: int, loaded: bool, what: str) -> None:
    if (cache.stats.parsed, cache.stats.index_loaded) != (parsed, loaded):
        stats = cache.stats
        raise AssertionError(f"{what}: read {stats.parsed} files, index loaded {stats.index_loaded}")


def verify(store: JsonHistoryStore, root: Path) -> pd.DataFrame:
    frame = insights_cache.insight_rows(store)
    expected = baseline(root)
    if insights.headline(frame) != insights.headline(expected) or len(frame) != len(expected):
        raise AssertionError("the cached frame differs from the one built from scratch")
    return frame


def measure(root: Path, conversations: int) -> dict:
    store = JsonHistoryStore(root)
    index = root / insights_cache.INDEX_NAME
    turn = iter(range(10**6))

    def rows() -> pd.DataFrame:
        return insights_cache.insight_rows(store)

    def change() -> None:
        k = next(turn)
        for n in range(CHANGED):
            cid = f"c{(k * CHANGED + n) * 97 % conversations:06d}"
            store.append(
                cid,
                make_message("user", f"one more {k}"),
                answer(random.Random(k), data.stamp(DAYS * 86_400 + k)),
            )

    def restart_after_change() -> None:
        """An index that is up to date, then CHANGED files rewritten while the server is down."""
        new_process()
        interval, insights_cache.SAVE_INTERVAL = insights_cache.SAVE_INTERVAL, 0.0
        try:
            rows()  # saves what the previous sample changed
        finally:
            insights_cache.SAVE_INTERVAL = interval
        change()
        new_process()

    r: dict = {"cold": timed_cpu(rows, before=lambda: (new_process(), index.unlink(missing_ok=True)))}
    cache = insights_cache.cache_for(store.root)
    expect(cache, conversations, False, "cold without an index")
    if not cache.stats.index_saved:
        raise AssertionError("the cold read did not write the index")
    verify(store, root)
    r["index_mb"] = index.stat().st_size / 2**20
    r["cold_index"] = timed_cpu(rows, before=new_process)
    expect(insights_cache.cache_for(store.root), 0, True, "cold with the index")
    verify(store, root)
    r["fresh"] = fresh(root)
    r["cold_index_changed"] = timed_cpu(rows, before=restart_after_change)
    cache = insights_cache.cache_for(store.root)
    expect(cache, CHANGED, True, f"cold with the index and {CHANGED} changes")
    frame = verify(store, root)
    r["rows"], r["frame_mb"] = len(frame), frame.memory_usage(deep=True).sum() / 2**20
    r["save"] = timed_cpu(lambda: write_atomic(index, insights_cache.encode_index(cache._keys, cache._frame)))
    r["warm"] = timed_cpu(rows)
    r["changed"] = timed_cpu(rows, before=change)
    expect(cache, CHANGED, False, f"warm after {CHANGED} changes")
    frame = rows()
    r["figures"] = timed_cpu(lambda: figures(frame))
    r["page"] = timed_cpu(lambda: figures(rows()))
    r["baseline"] = timed_cpu(lambda: baseline(root))
    return r


def cell(samples: dict[str, list[float]]) -> str:
    return f"{spread(samples['wall'])}; CPU {ms(median(samples['cpu']))}"


def check(samples: dict[str, list[float]], why: str = "") -> str:
    """Pass on wall-clock time; a miss says whether the work itself (CPU time) fits."""
    wall, cpu = median(samples["wall"]), median(samples["cpu"])
    if wall < TARGET:
        return verdict(True)
    busy = f"CPU time {ms(cpu)}: the rest is waiting for a core (load {os.getloadavg()[0]:.1f})"
    return verdict(False, busy if cpu < TARGET else why)


STEPS = [
    ("cold", "Cold, no index file: first `insight_rows()` in a process (list, read every file, save index)"),
    ("cold_index", "Cold, index file present: listing + load `.insights-index`, nothing changed"),
    ("cold_index_changed", f"Cold, index file present, {CHANGED} files changed since it was written"),
    ("fresh", "Cold, index file present, in a fresh interpreter (after its imports)"),
    ("warm", "Warm, nothing changed"),
    ("changed", f"Warm, {CHANGED} files changed"),
    ("figures", "All six figures on the frame"),
    ("page", "Warm page: `insight_rows()` + all six figures"),
]
COMPARED = {"cold", "cold_index", "cold_index_changed", "fresh", "warm", "changed"}
COLD_WHY = "it reads and validates every file, as the baseline does on every call; then the index spares it"


def report(r: dict, conversations: int, messages: int) -> None:
    base = median(r["baseline"]["wall"])
    rows = []
    for key, label in STEPS:
        ratio = f"{base / median(r[key]['wall']):,.1f}×" if key in COMPARED else "—"
        rows.append(
            [label, cell(r[key]), ratio, "under 1 s", check(r[key], COLD_WHY if key == "cold" else "")]
        )
    rows.append(["Writing the index file (encode + atomic write, fsync)", cell(r["save"]), "—", "—", "—"])
    rows.append(["Baseline: read every file, build the frame", cell(r["baseline"]), "1×", "—", "—"])
    headers = ["Step", "Wall (median, p90); CPU median", "Baseline ÷ this", "Target", "Result"]
    title = (
        f"Insights at {conversations:,} conversations × {messages} messages "
        f"({r['rows']:,} rows, frame {r['frame_mb']:.0f} MB in memory, index file {r['index_mb']:.1f} MB)"
    )
    imports = f"Fresh interpreter, imports of insights_cache and json_store: {spread(r['fresh']['imports'])}"
    section(title, table(headers, rows) + "\n\n" + imports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the folder (default: temp)")
    add_quiet_options(parser)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="insights-bench-", dir=args.dir))
    try:
        started = time.perf_counter()
        root = base / "history"
        fill(root, args.conversations, args.messages)
        span = timedelta(seconds=time.perf_counter() - started)
        print(
            f"{args.conversations:,} conversations generated in {span.seconds} s", file=sys.stderr, flush=True
        )
        wait_for_quiet(args)
        print(machine())
        results = measure(root, args.conversations)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results, args.conversations, args.messages)
    print(load_average())


if __name__ == "__main__":
    main()
