"""Careless input that used to stall a page: a 60,000-word search query, conversations centuries apart.

Run: .venv/bin/python -m bench.edge_input_bench [--conversations 1000] [--words 60000]
Baselines, measured in the same run: the quadratic repeat check search used before (each word compared
with every word kept before it), and the per-day calendar Insights drew before (every day from the first
message to the last). Target: each under a second, the time a rerun may take.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd

from bench.report import (
    add_quiet_options,
    load_average,
    machine,
    median,
    ms,
    section,
    spread,
    table,
    timed,
    verdict,
    wait_for_quiet,
)
from bench.search_data import fill
from history.models import Conversation, make_message
from history.search import _TERM, _WORD, MAX_TERMS, Term, query_terms
from history.stores.json_store import JsonHistoryStore
from tests.insights_reference import daily_activity, feedback_by_day, frame_of, reply_times
from tests.test_insights import FAR_APART


def quadratic_terms(query: str) -> list[Term]:
    """The repeat check before the fix: a list scanned for every word (today's terms, the old loop)."""
    terms: list[Term] = []
    for phrase, word in _TERM.findall(query):
        words = tuple(w.lower() for w in _WORD.findall(phrase or word))
        if words and Term(words) not in terms:
            terms.append(Term(words))
    return terms[:MAX_TERMS]


def per_day_activity(frame: pd.DataFrame) -> pd.DataFrame:
    """daily_activity before the fix: one row for every day from the first message to the last."""
    days = frame["created_at"].dt.floor("D").dt.tz_localize(None)
    calendar = pd.date_range(days.min(), days.max(), freq="D", name="day", unit="us")
    counts = {"conversations": frame["starts_conversation"], "messages": pd.Series(1, index=frame.index)}
    return pd.DataFrame(
        {name: rows.groupby(days).sum().reindex(calendar, fill_value=0) for name, rows in counts.items()},
        index=calendar,
    )


def insights_page(root: str) -> None:
    """The app's Insights page on a folder (AppTest runs this as its script)."""
    from types import SimpleNamespace

    from app_pages import insights
    from history.stores.json_store import JsonHistoryStore

    insights.render(SimpleNamespace(store=JsonHistoryStore(root)))


def per_day_page(root: str) -> None:
    """Baseline: the first chart of the page, and its numbers, as they were drawn: one row per day."""
    import streamlit as st

    from bench.edge_input_bench import per_day_activity
    from history.stores.json_store import JsonHistoryStore

    activity = per_day_activity(JsonHistoryStore(root).insight_rows())
    st.bar_chart(activity, stack=False)
    st.dataframe(activity)


def page_run(script, root: Path) -> tuple[float, int]:
    """Seconds of one AppTest run, and the bytes of the charts and tables it sends to the browser."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(script, args=(str(root),), default_timeout=600)
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise AssertionError(at.exception[0].message)
    drawn = [*at.get("vega_lite_chart"), *at.get("dataframe")]
    return seconds, sum(element.proto.ByteSize() for element in drawn)


def peak_mb(action) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def long_query(root: Path, words: int) -> list[list[object]]:
    query = " ".join(f"w{n}" for n in range(words))
    store = JsonHistoryStore(root)
    store.search("", 1)  # a warm server: the index is open
    terms = timed(lambda: query_terms(query), 5)
    whole = timed(lambda: store.search(query, 100), 5)
    started = time.perf_counter()
    assert quadratic_terms(query) == query_terms(query)
    baseline = time.perf_counter() - started
    over = f"over {store.count():,} conversations (warm)"
    return [
        [f"`query_terms()` of {words:,} different words", spread(terms), ms(baseline),
         f"{baseline / median(terms):,.0f}×", verdict(median(terms) < 1)],
        [f"`store.search()` with that query {over}", spread(whole), "—", "—", verdict(median(whole) < 1)],
    ]


def far_apart() -> list[list[object]]:
    def recent(n: int) -> Conversation:
        message = make_message("user", "hi", created_at=f"2026-03-{n:02d}T10:00Z")
        return Conversation(id=f"c{n}", messages=[message])

    frame = frame_of([*FAR_APART, *map(recent, range(1, 21))])
    figures = lambda: (daily_activity(frame), reply_times(frame), feedback_by_day(frame))  # noqa: E731
    now = timed(figures, 5)
    before = timed(lambda: per_day_activity(frame), 1)[0]
    old_rows, old_peak = len(per_day_activity(frame)), peak_mb(lambda: per_day_activity(frame))
    root = Path(tempfile.mkdtemp(prefix="edge-input-insights-"))
    try:
        store = JsonHistoryStore(root)
        for conversation in (*FAR_APART, *map(recent, range(1, 21))):
            store.create(conversation)
        runs = [page_run(insights_page, root) for _ in range(3)]
        old_seconds, old_bytes = page_run(per_day_page, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    page, sent = [seconds for seconds, _ in runs], runs[-1][1]
    return [
        ["The Insights page (AppTest run: frame, 5 charts, their tables)", spread(page),
         f"{ms(old_seconds)} for its first chart and table alone, drawn per day", "—",
         verdict(median(page) < 1)],
        ["Charts and tables the page sends to the browser", f"{sent / 2**10:,.0f} KB",
         f"{old_bytes / 2**20:,.1f} MB for the first chart and table alone",
         f"{old_bytes / sent:,.0f}×", "—"],
        [f"Three per-day figures, messages from 1677 to 2262 ({len(daily_activity(frame))} rows each)",
         f"{spread(now)}; peak {peak_mb(figures):.1f} MB",
         f"{ms(before)}, peak {old_peak:.0f} MB for `daily_activity` alone ({old_rows:,} rows)",
         f"{before / median(now):,.0f}×", verdict(median(now) < 1)],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--words", type=int, default=60_000)
    add_quiet_options(parser)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="edge-input-bench-"))
    try:
        fill(base / "history", args.conversations, 20)
        wait_for_quiet(args)
        print(machine())
        rows = long_query(base / "history", args.words) + far_apart()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    headers = ["Step", "Now (median, p90)", "Baseline: before the fix", "Baseline ÷ now", "Target: < 1 s"]
    section("Careless input (wall clock)", table(headers, rows))
    print(load_average())


if __name__ == "__main__":
    main()
