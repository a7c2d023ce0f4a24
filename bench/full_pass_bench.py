"""The worst History query of a running server over a window that holds the periodic full pass, at 100,000.

Run: .venv/bin/python -m bench.full_pass_bench [--conversations 100000] [--seconds 40] [--pause 0.1]
     [--runs 2] [--before ../bench-before]
Baseline, measured in the same run: commit 934ad88, where the pass over every file that inotify cannot
replace (every FULL_PASS_EVERY = 30 s) ran in the foreground of the next query, from a git worktree of
that commit (made with `git worktree add --detach` if --before does not exist). Both checkouts run the
same probe (this file with --probe, importing only `history`) in processes of their own, taking turns run
by run. The probe opens the generated folder (bench/index_data.py), asks for its first page, waits out
the new process's first check, then asks for the History page (`page(100)`) every --pause seconds for
--seconds: the window holds the periodic pass 30 s after the first one. Conversations are only read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "934ad88"
SETTLE = 5.0  # seconds after the first page: the new process's check of every file has ended
SLOW = 0.1  # seconds; a History page slower than this is one a user notices


def probe(root: str, seconds: str, pause: str) -> None:
    """In the checkout's own process: every page(100)'s seconds, and how many passed every file themselves
    or started that pass in a thread."""
    from history.stores.json_store import JsonHistoryStore

    store = JsonHistoryStore(root)
    store.page(100)
    time.sleep(SETTLE)
    samples, full, background = [], 0, 0
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        started = time.perf_counter()
        store.page(100)
        samples.append(time.perf_counter() - started)
        full += store.last_scan.full
        background += store.last_scan.background
        time.sleep(float(pause))
    print(json.dumps({"samples": samples, "full": full, "background": background}))


def ensure_before(path: Path) -> Path:
    """The baseline's checkout: a detached worktree of BEFORE_COMMIT, made if missing."""
    if not (path / "history" / "stores" / "folder_index.py").exists():
        print(f"Making a worktree of {BEFORE_COMMIT} at {path}", file=sys.stderr, flush=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), BEFORE_COMMIT],
                       check=True)
    return path.resolve()


def run(checkout: Path, root: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--probe", str(root), str(args.seconds),
               str(args.pause)]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"the probe at {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:
        probe(*sys.argv[2:])
        return
    from bench import index_data as data
    from bench import report as rp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=data.SEED, help="of the generated folder")
    parser.add_argument("--seconds", type=float, default=40.0, help="of History pages per run")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between two pages")
    parser.add_argument("--runs", type=int, default=2, help="processes per checkout, taking turns")
    parser.add_argument("--before", type=Path, default=REPO.parent / "bench-before",
                        help=f"checkout of {BEFORE_COMMIT}")
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    checkouts = {f"before ({BEFORE_COMMIT}): pass in the query": ensure_before(args.before),
                 "after: pass in a thread": REPO}
    root = data.folder(args.conversations, args.messages, args.seed)
    rp.wait_for_quiet(args)
    print(rp.machine())
    print(f"Folder: {root} ({args.conversations:,} conversations); {args.seconds:.0f} s of page(100) every"
          f" {args.pause} s per run, {args.runs} runs per checkout")
    found: dict[str, list[dict]] = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, checkout in checkouts.items():
            found[name].append(run(checkout, root, args))
    rows = []
    for name, results in found.items():
        samples = [s for result in results for s in result["samples"]]
        rows.append([name, f"{len(samples):,}", rp.ms(rp.median(samples)), rp.ms(rp.p90(samples)),
                     rp.ms(max(samples)), sum(s > SLOW for s in samples),
                     sum(result["full"] for result in results),
                     sum(result["background"] for result in results)])
    headers = ["Code", "Pages", "Median", "p90", "Worst", f"Pages > {SLOW * 1000:.0f} ms",
               "Full passes in a query", "Full passes in a thread"]
    rp.section("History page (page(100)) of a running server, a window holding the 30-second pass",
               rp.table(headers, rows))
    print(rp.load_average())


if __name__ == "__main__":
    main()
