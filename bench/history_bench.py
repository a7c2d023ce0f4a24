"""History store at 1 to 100,000 conversations: saving a turn, against the Flask MVP's single file.

Run: .venv/bin/python -m bench.history_bench [--sizes 1,1000,10000,100000] [--appends 30] [--dir DIR]
Baseline, measured in the same run: the Flask MVP's one conversation_history.json, loaded and rewritten
whole on every turn. Targets: a turn costs the same at 100,000 conversations as at 1 (within 20 %) and
is >= 100x faster than the Flask design at 10,000. Listing, a new session, search and Insights at
100,000 are measured against the previous design by bench/index_bench.py.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import history_data as data
from bench import report as rp
from bench.history_tables import saving_tables
from history.models import make_message
from history.stores.json_store import JsonHistoryStore

TARGET_ID = "c000000"  # exists at every size, so every size appends to the same 20-message file
USER_TEXT = "Could you explain that last point again, with an example? " * 3


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


def prepare(base: Path, size: int, args: argparse.Namespace) -> dict:
    """Generate one size's folder (indexed) and its Flask file; keep them until the end of the run."""
    started = time.perf_counter()
    root, flask = base / f"history-{size}", base / f"flask-{size}" / "conversation_history.json"
    r: dict = {"root": root, "flask": flask, "build": data.fill(root, size, args.messages)}
    r["mb"] = data.folder_mb(root)
    data.fill_flask(flask, size, args.messages)
    print(
        f"{size:,} conversations ({r['mb']:.0f} MB) generated and indexed in "
        f"{time.perf_counter() - started:.0f} s (the index alone {r['build']:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
    return r


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
    for r in results.values():
        r["store"] = JsonHistoryStore(r["root"])
        r["store"].count()  # a running server: its index is open
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
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")})
    rp.wait_for_quiet(args)
    print(rp.machine())
    base = Path(tempfile.mkdtemp(prefix="history-bench-", dir=args.dir))
    try:
        results = run(base, sizes, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    saving_tables(results)
    print(rp.load_average())


if __name__ == "__main__":
    main()
