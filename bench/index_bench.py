"""The JSON folder's SQLite index at 100,000 conversations, against the three caches it replaced.

Run: .venv/bin/python -m bench.index_bench [--conversations 100000] [--cold-runs 4] [--warm-runs 7]
     [--rebuild-runs 2] [--saves 30] [--save-sizes 1,1000,10000,100000] [--old ../bench-old]
Baseline, measured in the same run: the previous design (commit ff6a7b1: .index.json listing,
.search-index text, .insights-index Parquet), from a git worktree of that commit (made with
`git worktree add --detach` if --old does not exist). Both designs run the same probe
(bench/index_probe.py) in processes of their own, taking turns run by run so load hits them alike.
Targets (issue): a new session < 300 ms warm, < 1 s cold; the first History page < 150 ms warm,
< 1 s cold; a search < 200 ms warm and cold; Insights < 1 s in a fresh process; saving a turn flat
within 20 % from 1 to 100,000 conversations. A fresh process (cold) finds the folder unchanged since
the last pass and answers from the index, checking every file in a thread a second later.
The folder is generated once per seed into /tmp/bench-data (bench/index_data.py) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import index_data as data
from bench import report as rp
from bench.index_tables import print_tables

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "bench" / "index_probe.py"
OLD_COMMIT = "ff6a7b1"
DESIGNS = ("new", "old")
SAVE_IDS = {"new": "c000000", "old": "c000001"}  # in the shared 100,000 folder, one conversation each


def ensure_old(path: Path) -> Path:
    """The previous design's checkout: a detached worktree of OLD_COMMIT, made if missing."""
    if not (path / "history" / "summary_cache.py").exists():
        print(f"Making a worktree of {OLD_COMMIT} at {path}", file=sys.stderr, flush=True)
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), OLD_COMMIT], check=True
        )
    return path.resolve()


class Probes:
    """Runs bench/index_probe.py on one design's checkout and returns what it printed."""

    def __init__(self, old: Path) -> None:
        self.checkouts = {"new": REPO, "old": old}

    def __call__(self, design: str, root: Path, *args: str) -> dict:
        checkout = self.checkouts[design]
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        command = [sys.executable, "-P", str(PROBE), design, str(root), *args]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode:
            raise RuntimeError(f"{design} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.splitlines()[-1])
        result["process_s"] = time.perf_counter() - started
        return result


def restore(root: Path, total: int, messages: int, seed: int, ids: list[str]) -> None:
    """Put back conversations that an earlier run appended to, so every run reads the same folder."""
    for cid in ids:
        data.write(root, int(cid[1:]), total, messages, seed)


def rebuilds(probe: Probes, roots: dict[str, Path], runs: int) -> dict[str, list[dict]]:
    """Each design rebuilt from no index files, taking turns; leaves both designs' files in place."""
    found: dict[str, list[dict]] = {design: [] for design in DESIGNS}
    for run in range(runs):
        for design in DESIGNS:
            result = probe(design, roots[design], "rebuild", data.WORD)
            found[design].append(result)
            print(
                f"  rebuild {run + 1}/{runs} {design}: {result['work_s']:.1f} s", file=sys.stderr, flush=True
            )
    return found


COLD_OPS = [("session", ["cold", "session"]), ("page", ["cold", "page"])]
COLD_OPS += [(f"search:{label}", ["cold", "search", query]) for label, query in data.QUERIES.items()]
COLD_OPS += [("insights", ["insights"])]


def colds(probe: Probes, roots: dict[str, Path], runs: int) -> dict[str, dict[str, list[dict]]]:
    """Each operation first in a fresh process, designs and operations taking turns."""
    found = {key: {design: [] for design in DESIGNS} for key, _ in COLD_OPS}
    for run in range(runs):
        for key, args in COLD_OPS:
            for design in DESIGNS:
                result = probe(design, roots[design], *args)
                if (
                    result["parsed"] > len(SAVE_IDS) or result["rebuilt"] or result["in_memory"]
                ):  # restored files
                    raise AssertionError(f"{design} {key} cold did not use its index files: {result}")
                found[key][design].append(result)
        print(f"  cold runs {run + 1}/{runs} done", file=sys.stderr, flush=True)
    return found


def warms(probe: Probes, roots: dict[str, Path], runs: int) -> dict[str, dict]:
    queries = json.dumps(data.QUERIES)
    return {design: probe(design, roots[design], "warm", str(runs), queries) for design in DESIGNS}


def saves(probe: Probes, args: argparse.Namespace, roots: dict[str, Path]) -> dict[str, dict[int, list]]:
    """Appends at each size, sizes taking turns save by save; each design saves into its own files."""
    found: dict[str, dict[int, list[float]]] = {}
    for design in DESIGNS:
        root = roots[design]
        targets = {}
        for size in args.save_sizes:
            if size == args.conversations:
                folder, cid = root, SAVE_IDS[design]
            else:
                folder, cid = data.folder(size, args.messages, args.seed, f"-save-{design}"), "c000000"
            restore(folder, size, args.messages, args.seed, [cid])
            targets[size] = f"{folder}:{cid}"
        samples = probe(design, root, "save", str(args.saves), *targets.values())["samples"]
        found[design] = {size: samples[target] for size, target in targets.items()}
        restore(root, args.conversations, args.messages, args.seed, [SAVE_IDS[design]])
    return found


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument(
        "--seed", type=int, default=data.SEED, help="of the generated folder (cached per seed)"
    )
    parser.add_argument("--cold-runs", type=int, default=4, help="fresh processes per operation and design")
    parser.add_argument("--warm-runs", type=int, default=7, help="calls per operation after a first one")
    parser.add_argument("--rebuild-runs", type=int, default=2, help="rebuilds from no index files per design")
    parser.add_argument("--saves", type=int, default=30, help="appends per size and design")
    parser.add_argument("--save-sizes", default="1,1000,10000,100000")
    parser.add_argument(
        "--old", type=Path, default=REPO.parent / "bench-old", help=f"checkout of {OLD_COMMIT}"
    )
    rp.add_quiet_options(parser)
    args = parser.parse_args()
    sizes = {int(s.replace("_", "")) for s in args.save_sizes.split(",")}
    args.save_sizes = sorted(size for size in sizes if size <= args.conversations)
    return args


def main() -> None:
    args = parse()
    probe = Probes(ensure_old(args.old))
    root = data.folder(args.conversations, args.messages, args.seed)
    roots = {"new": root, "old": data.mirror(root)}
    for folder in roots.values():
        restore(folder, args.conversations, args.messages, args.seed, list(SAVE_IDS.values()))
    for size in args.save_sizes:  # generated before the clock starts: minutes the first time
        if size != args.conversations:
            for design in DESIGNS:
                data.folder(size, args.messages, args.seed, f"-save-{design}")
    rp.wait_for_quiet(args)
    print(rp.machine())
    print(
        f"Folder: {root} ({args.conversations:,} conversations × {args.messages} messages, "
        f"{data.megabytes(root):,.0f} MB, seed {args.seed}); previous design: {probe.checkouts['old']},"
        f" on hard links to the same files in {roots['old']}"
    )
    started = time.perf_counter()
    results = {"rebuild": rebuilds(probe, roots, args.rebuild_runs)}
    results["cold"] = colds(probe, roots, args.cold_runs)
    results["warm"] = warms(probe, roots, args.warm_runs)
    results["save"] = saves(probe, args, roots)
    print_tables(results, args)
    trusted = [r.get("background", False) for runs in results["cold"].values() for r in runs["new"]]
    print(f"New design, cold: {sum(trusted)} of {len(trusted)} fresh processes found the folder unchanged and"
          " answered from its index before checking every file; any others made the full pass first.")
    print(f"Measured in {time.perf_counter() - started:.0f} s. {rp.load_average()}")


if __name__ == "__main__":
    main()
