"""The Insights page's figures on a JSON folder of 100,000 conversations × 20 messages, in fresh processes:
store.insights() (aggregated by the folder's SQLite index) against today's way before it,
store.insight_rows() and the pandas figures (tests/insights_reference.py).

Run: .venv/bin/python -m bench.insights_sql_bench [--conversations 100000] [--messages 20]
     [--dir /tmp/bench-data/insights-100k] [--runs 3]
The folder is written once (files as JsonHistoryStore encodes them, then indexed by one pass) and kept
for later runs. Each sample is a new interpreter with the index on disk, as a restarted server has it;
the time counts from opening the store, so it includes the directory pass that checks the index is current.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAYS = 90
BASE = datetime(2025, 1, 1, tzinfo=UTC)
QUESTIONS = ["What is the capital of France?", "How do I reset my password?", "Explain recursion simply",
             "Give me a recipe for pancakes"] + [f"Question number {k} about the product" for k in range(40)]

SAMPLE = r"""
import json, sys, time
started = time.perf_counter()
from datetime import date
from history.insights import between
from history.stores.json_store import JsonHistoryStore
from tests import insights_reference as figures
imported = time.perf_counter()
store = JsonHistoryStore(sys.argv[1])
mode, start, end = sys.argv[2], *(date.fromisoformat(d) if d != "-" else None for d in sys.argv[3:5])
if mode == "pass":  # what every page pays first: the directory pass that keeps the index current
    result = {"conversations": store.count()}
elif mode == "new":
    found = store.insights(start, end)
    result = found.headline
else:
    frame = between(store.insight_rows(), start, end)
    result = figures.headline(frame)
    for figure in (figures.daily_activity, figures.reply_times, figures.feedback_by_day,
                   figures.answer_sources, figures.top_first_questions, figures.bucket_size):
        figure(frame)
done = time.perf_counter()
print(json.dumps({"imports": imported - started, "page": done - imported, "headline": result}))
"""


def stamp(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def conversation(n: int, total: int, messages: int):
    """Conversation c<n>, started at an even spread over DAYS days, a message every ~40 s."""
    from history.models import Conversation, make_message

    rng = random.Random(n)
    start = int(n * DAYS * 86_400 / total)
    conv = Conversation(id=f"c{n:06d}", model="bench-model", created_at=stamp(start))
    question = rng.choice(QUESTIONS)
    question = rng.choice((str, str.lower, str.upper, lambda q: q.rstrip("?!.") + "?!"))(question)
    for k in range(messages):
        at = stamp(start + k * 40 + rng.randint(0, 20))
        if k % 2 == 0:
            conv.add(make_message("user", question if k == 0 else f"Follow-up {k} to {n}", created_at=at))
            continue
        source = rng.choices(("model", "scripted", "fallback"), (85, 12, 3))[0]
        extra: dict = {"source": source} if source != "model" else {
            "latency_ms": rng.randint(300, 8000), "first_token_ms": rng.randint(80, 1500),
            "usage": {"prompt_tokens": rng.randint(20, 2000), "completion_tokens": rng.randint(5, 800)}}
        if source == "model" and rng.random() < 0.03:
            extra["status"] = rng.choice(("stopped", "interrupted"))
        if rng.random() < 0.15:
            extra["feedback"] = rng.choice(("up", "up", "down"))
        conv.add(make_message("assistant", "A reply of a few words.", created_at=at, **extra))
    return conv


def _write(job: tuple[str, int, int, int, int]) -> None:
    from history.stores.json_store import encode

    root, first, last, total, messages = job
    for n in range(first, last):
        conv = conversation(n, total, messages)
        (Path(root) / f"{conv.id}.json").write_bytes(encode(conv))


def fill(root: Path, conversations: int, messages: int) -> None:
    """The folder, written once: files in two processes, then the index by one pass of the store."""
    from history.stores.json_store import JsonHistoryStore

    root.mkdir(parents=True)
    step = 5000
    jobs = [(str(root), n, min(n + step, conversations), conversations, messages)
            for n in range(0, conversations, step)]
    started = time.perf_counter()
    with Pool(2) as pool:
        pool.map(_write, jobs)
    written = time.perf_counter()
    JsonHistoryStore(root).prepare()
    print(f"wrote {conversations:,} files in {written - started:.0f} s, indexed in "
          f"{time.perf_counter() - written:.0f} s", flush=True)


def sample(root: Path, mode: str, start: str, end: str) -> dict:
    output = subprocess.run([sys.executable, "-c", SAMPLE, str(root), mode, start, end], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-data/insights-100k"))
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if not options.dir.exists():
        fill(options.dir, options.conversations, options.messages)
    ranges = {"all dates": ("-", "-"), "last 7 days": ("2025-03-25", "2025-03-31")}
    sample(options.dir, "new", "-", "-")  # the first pass after writing, and the OS file cache, warm
    passes = [sample(options.dir, "pass", "-", "-")["page"] for _ in range(options.runs)]
    print(f"directory pass alone (store.count()): {statistics.median(passes) * 1000:.0f} ms", flush=True)
    for label, (start, end) in ranges.items():
        for mode in ("new", "old"):
            runs = [sample(options.dir, mode, start, end) for _ in range(options.runs)]
            pages = [run["page"] for run in runs]
            imports = statistics.median(run["imports"] for run in runs)
            print(f"{label:12} {mode:3}: page {statistics.median(pages) * 1000:7.0f} ms median "
                  f"(min {min(pages) * 1000:.0f}, max {max(pages) * 1000:.0f}, n={len(pages)}); "
                  f"imports {imports * 1000:.0f} ms; headline {runs[0]['headline']}", flush=True)


if __name__ == "__main__":
    main()
