"""Insights at 10,000 conversations of 20 messages: the cached message frame and the figures.

Run: .venv/bin/python -m bench.insights_bench [--conversations 10000] [--messages 20] [--dir DIR]
Baseline, measured in the same run: read every file and build the frame from scratch, on every call.
Target: every step of the page takes under 1 s at 10,000 conversations.
The folder is written as JsonHistoryStore writes it (its encoder; no fsync, to save minutes), then
listed once so .index.json exists as in a deployment; the changes go through JsonHistoryStore.append.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from bench import history_data as data
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
from history.json_store import JsonHistoryStore, encode, read_file
from history.models import Conversation, make_message

REPEAT = 5
CHANGED = 10  # files rewritten before each "after a change" sample
TARGET = 1.0  # seconds
DAYS = 90
QUESTIONS = [
    "What is the capital of France?",
    "How do I reset my password?",
    "Can you summarise this article?",
    "Write a haiku about autumn",
    "What's the weather like today?",
    "How do I sort a list in Python?",
    "Translate 'good morning' into Spanish",
    "What are your opening hours?",
    "Explain recursion simply",
    "Give me a recipe for pancakes",
] + [f"Question number {k} about the product" for k in range(40)]


def spelling(question: str, rng: random.Random) -> str:
    """The same question as people type it: case, spaces and trailing punctuation vary."""
    variant = rng.choice((str, str.lower, str.upper, lambda q: q.rstrip("?!.") + "?!"))(question)
    return variant.replace(" ", "  ", 1) if rng.random() < 0.1 else variant


def answer(rng: random.Random, at: str) -> dict:
    """A reply: mostly the model's with timings and usage, some scripted or fallback, some rated."""
    source = rng.choices(("model", "scripted", "fallback"), (85, 12, 3))[0]
    extra: dict = {}
    if source == "model":
        prompt, completion = rng.randint(20, 2000), rng.randint(5, 800)
        extra = {
            "latency_ms": rng.randint(300, 8000),
            "first_token_ms": rng.randint(80, 1500),
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        if rng.random() < 0.03:
            extra["status"] = rng.choice(("stopped", "interrupted"))
    else:
        extra["source"] = source
    rating = rng.random()
    if rating < 0.15:
        extra["feedback"] = "up" if rating < 0.11 else "down"
    return make_message("assistant", data.REPLY, created_at=at, **extra)


def conversation(n: int, total: int, messages: int) -> Conversation:
    """Conversation c<n>, started at an even spread over DAYS days, a message every ~40 s."""
    rng = random.Random(n)
    start = int(n * DAYS * 86_400 / total)
    conv = Conversation(id=f"c{n:06d}", model="bench-model", created_at=data.stamp(start))
    question = spelling(rng.choice(QUESTIONS), rng)
    for k in range(messages):
        at = data.stamp(start + k * 40 + rng.randint(0, 20))
        if k % 2:
            conv.add(answer(rng, at))
        else:
            conv.add(make_message("user", question if k == 0 else data.text(n, k), created_at=at))
    return conv


def fill(root: Path, conversations: int, messages: int) -> None:
    root.mkdir(parents=True)
    for n in range(conversations):
        conv = conversation(n, conversations, messages)
        (root / f"{conv.id}.json").write_bytes(encode(conv))
    summary_cache.forget_all()
    JsonHistoryStore(root).list()  # writes .index.json, as a deployment has one


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


def measure(root: Path, conversations: int) -> dict:
    store = JsonHistoryStore(root)
    r: dict = {"cold": timed_cpu(lambda: insights_cache.insight_rows(store), before=new_process)}
    cache = insights_cache.cache_for(store.root)
    if cache.stats.parsed != conversations:
        raise AssertionError(f"cold read {cache.stats.parsed} files, expected {conversations}")
    frame = insights_cache.insight_rows(store)
    expected = baseline(root)
    if insights.headline(frame) != insights.headline(expected) or len(frame) != len(expected):
        raise AssertionError("the cached frame differs from the one built from scratch")
    r["rows"], r["frame_mb"] = len(frame), frame.memory_usage(deep=True).sum() / 2**20
    r["warm"] = timed_cpu(lambda: insights_cache.insight_rows(store))
    turn = iter(range(10**6))

    def change() -> None:
        k = next(turn)
        for n in range(CHANGED):
            cid = f"c{(k * CHANGED + n) * 97 % conversations:06d}"
            store.append(
                cid,
                make_message("user", f"one more {k}"),
                answer(random.Random(k), data.stamp(DAYS * 86_400 + k)),
            )

    r["changed"] = timed_cpu(lambda: insights_cache.insight_rows(store), before=change)
    if cache.stats.parsed != CHANGED:
        raise AssertionError(f"after {CHANGED} changes the cache read {cache.stats.parsed} files")
    frame = insights_cache.insight_rows(store)
    r["figures"] = timed_cpu(lambda: figures(frame))
    r["page"] = timed_cpu(lambda: figures(insights_cache.insight_rows(store)))
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
    ("cold", "Cold: first `insight_rows()` in the process (listing + read every file)"),
    ("warm", "Warm, nothing changed"),
    ("changed", f"Warm, {CHANGED} files changed"),
    ("figures", "All six figures on the frame"),
    ("page", "Warm page: `insight_rows()` + all six figures"),
]
COLD_WHY = "it reads and validates every file, once per process, as the baseline does on every call"


def report(r: dict, conversations: int, messages: int) -> None:
    base = median(r["baseline"]["wall"])
    rows = []
    for key, label in STEPS:
        ratio = f"{base / median(r[key]['wall']):,.1f}×" if key in ("cold", "warm", "changed") else "—"
        rows.append(
            [label, cell(r[key]), ratio, "under 1 s", check(r[key], COLD_WHY if key == "cold" else "")]
        )
    rows.append(["Baseline: read every file, build the frame", cell(r["baseline"]), "1×", "—", "—"])
    headers = ["Step", "Wall (median, p90); CPU median", "Baseline ÷ this", "Target", "Result"]
    title = (
        f"Insights at {conversations:,} conversations × {messages} messages "
        f"({r['rows']:,} rows, frame {r['frame_mb']:.0f} MB in memory)"
    )
    section(title, table(headers, rows))


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
