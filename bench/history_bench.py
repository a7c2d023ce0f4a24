"""History store at 1 to 100,000 conversations: saving a turn, listing the table, starting a session.

Run: .venv/bin/python -m bench.history_bench [--sizes 1,1000,10000,100000] [--appends 30] [--dir DIR]
Baseline, measured in the same run: the Flask MVP's one conversation_history.json, loaded and rewritten
whole on every turn. Targets: a turn costs the same at 100,000 conversations as at 1 (within 20 %) and
is >= 100x faster than the Flask design at 10,000; listing 10,000 takes < 150 ms warm and < 1 s cold;
a new session starts in < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import history_data as data
from bench import report as rp
from bench.history_tables import listing_tables, saving_tables, session_tables
from history import summary_cache
from history.listing import conversations_table
from history.models import make_message
from history.stores.json_store import JsonHistoryStore

REPO = Path(__file__).resolve().parents[1]
TARGET_ID = "c000000"  # exists at every size, so every size appends to the same 20-message file
USER_TEXT = "Could you explain that last point again, with an example? " * 3
COLD_RUNS = 3


def save_user(store: JsonHistoryStore, cid: str) -> None:
    """What ChatService.add_user_message does for a saved conversation."""
    if store.exists(cid):
        store.append(cid, make_message("user", USER_TEXT))


def save_turn(store: JsonHistoryStore, cid: str) -> None:
    """A whole turn as the app saves it: the user's message, then the reply with its details."""
    save_user(store, cid)
    if store.exists(cid):
        details = {"model": "bench-model", "finish_reason": "stop", "latency_ms": 900, "first_token_ms": 200}
        store.append(cid, make_message("assistant", data.REPLY, **details))


def new_session(store: JsonHistoryStore) -> None:
    """A new browser session: list, open the latest conversation, build the history table."""
    summaries = store.list()
    store.get(summaries[0].id)
    conversations_table(summaries)


def bare_scan(root: Path) -> None:
    """One os.scandir pass with a stat per file: the floor of any listing that checks every file."""
    with os.scandir(root) as entries:
        for entry in entries:
            entry.stat(follow_symlinks=False)


def probe(kind: str, root: str) -> None:
    """Run in a new process: time the first listing (or session) there and print it as JSON."""
    started = time.perf_counter()
    store = JsonHistoryStore(root)
    summaries = store.list()
    listed = time.perf_counter()
    if kind == "session":
        store.get(summaries[0].id)
    conversations_table(summaries)
    print(json.dumps({"work_s": time.perf_counter() - started, "list_s": listed - started}))


def cold(kind: str, root: Path) -> dict[str, list[float]]:
    """Probe in fresh interpreters (OS file cache warm), as the first session after a restart sees it."""
    runs: dict[str, list[float]] = {"work_s": [], "list_s": [], "process_s": []}
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "bench.history_bench", "--probe", kind, str(root)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        runs["process_s"].append(time.perf_counter() - started)
        for key, value in json.loads(out).items():
            runs[key].append(value)
    return runs


def index_rewrite(store: JsonHistoryStore, repeat: int) -> list[float]:
    """A listing that also rewrites .index.json, which the store does at most every 30 s or 100 changes."""
    summary_cache.SAVE_INTERVAL, saved = 0.0, summary_cache.SAVE_INTERVAL
    times = []
    try:
        for _ in range(repeat):
            save_user(store, TARGET_ID)
            times += rp.timed(store.list, 1)
    finally:
        summary_cache.SAVE_INTERVAL = saved
    return times


def prepare(base: Path, size: int, args: argparse.Namespace) -> dict:
    """Generate one size's folder (indexed) and its Flask file; keep them until the end of the run."""
    started = time.perf_counter()
    root, flask = base / f"history-{size}", base / f"flask-{size}" / "conversation_history.json"
    r: dict = {"root": root, "flask": flask, "first_list": data.fill(root, size, args.messages)}
    r["mb"] = data.folder_mb(root)
    data.fill_flask(flask, size, args.messages)
    print(
        f"{size:,} conversations ({r['mb']:.0f} MB) generated and indexed in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return r


def measure_reads(size: int, r: dict) -> None:
    """Cold probes first, then this process becomes a warm server for the folder."""
    root = r["root"]
    r["list_cold"], r["session_cold"] = cold("list", root), cold("session", root)
    store = r["store"] = JsonHistoryStore(root)
    store.list()  # loads the index: from here on this process is a warm server
    warm = 20 if size <= 10_000 else 5
    r["scan"] = rp.timed(lambda: bare_scan(root), warm)
    r["list_warm"] = rp.timed(store.list, warm)
    r["table_warm"] = rp.timed(lambda: conversations_table(store.list()), warm)
    r["session_warm"] = rp.timed(lambda: new_session(store), warm)
    r["index"] = index_rewrite(store, 3)


def measure_saves(results: dict[int, dict], appends: int) -> None:
    """Sizes take turns save by save, so background disk load hits them all alike."""
    for key, action in (("append", save_user), ("turn", save_turn)):
        for r in results.values():
            r[key] = []
        for _ in range(appends):
            for r in results.values():
                r[key] += rp.timed(lambda r=r, action=action: action(r["store"], TARGET_ID), 1)


def measure_flask(size: int, r: dict, args: argparse.Namespace) -> None:
    """The baseline: fewer runs where one run rewrites hundreds of megabytes."""
    flask = r["flask"]
    runs = max(3 if size <= 10_000 else 1, min(args.appends, 200_000 // (size * args.messages)))
    user, reply = {"role": "user", "content": USER_TEXT}, {"role": "assistant", "content": data.REPLY}
    r["flask_append"] = rp.timed(lambda: data.flask_save(flask, user), runs)
    r["flask_turn"] = rp.timed(lambda: data.flask_save(flask, user, reply), runs)
    r["flask_load"] = rp.timed(lambda: data.flask_load(flask), runs)
    flask.unlink()


def run(base: Path, sizes: list[int], args: argparse.Namespace) -> dict[int, dict]:
    results = {size: prepare(base, size, args) for size in sizes}
    for size, r in results.items():
        measure_reads(size, r)
    measure_saves(results, args.appends)
    for size, r in results.items():
        measure_flask(size, r, args)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000,100000", help="comma-separated conversation counts")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--appends", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the folders (default: temp)")
    parser.add_argument("--probe", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    if args.probe:
        probe(*args.probe)
        return
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")})
    rp.wait_for_quiet(args)
    print(rp.machine())
    base = Path(tempfile.mkdtemp(prefix="history-bench-", dir=args.dir))
    try:
        results = run(base, sizes, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    saving_tables(results)
    listing_tables(results)
    session_tables(results)
    print(rp.load_average())


if __name__ == "__main__":
    main()
