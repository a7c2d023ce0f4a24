"""The history table: columns, order and types the app's table relies on."""

from __future__ import annotations

import time
from datetime import date

import pandas as pd

from history.listing import COLUMNS, conversations_table
from history.models import Conversation, ConversationSummary
from history.stores.memory_store import MemoryHistoryStore


def summary(n: int, updated: str) -> ConversationSummary:
    return ConversationSummary(f"c{n}", f"Title {n}", "2024-01-01T00:00:00.000Z", updated, n, "m")


def test_table_is_newest_first_with_exact_columns():
    store = MemoryHistoryStore()
    for n, updated in ((1, "2024-01-02T00:00:00.000Z"), (2, "2024-01-03T00:00:00.000Z"),
                       (3, "2024-01-02T12:00:00+02:00")):
        store.create(Conversation(id=f"c{n}", created_at="2024-01-01T00:00:00.000Z", updated_at=updated,
                                  messages=[{"role": "user", "content": "hi", "created_at": updated}] * n))
    table = conversations_table(store.page())
    assert list(table.columns) == COLUMNS == ["id", "title", "created", "updated", "messages", "model"]
    assert list(table["id"]) == ["c2", "c3", "c1"]
    assert list(table["messages"]) == [2, 3, 1]
    assert table["updated"].iloc[0] == pd.Timestamp("2024-01-03", tz="UTC")
    assert str(table["created"].dt.tz) == "UTC" and str(table["updated"].dt.tz) == "UTC"


def test_empty_table_keeps_columns_and_types():
    empty = conversations_table([])
    full = conversations_table([summary(1, "2024-01-02T00:00:00.000Z")])
    assert empty.empty and list(empty.columns) == COLUMNS
    assert empty.dtypes.equals(full.dtypes)


def test_unparseable_time_sorts_last_instead_of_failing():
    store = MemoryHistoryStore()
    for n, updated in ((1, "yesterday"), (2, "2024-01-03T00:00:00.000Z")):
        store.create(Conversation(id=f"c{n}", created_at="2024-01-01T00:00:00.000Z", updated_at=updated))
    table = conversations_table(store.page())
    assert list(table["id"]) == ["c2", "c1"] and pd.isna(table["updated"].iloc[1])


def test_ten_thousand_rows_build_quickly():
    rows = [summary(n, f"2024-01-01T00:00:{n % 60:02d}.{n % 1000:03d}Z") for n in range(10_000)]
    started = time.perf_counter()
    table = conversations_table(rows)
    assert len(table) == 10_000
    assert time.perf_counter() - started < 1.0  # typically ~20 ms; generous for slow CI


def test_days_keep_conversations_updated_between_two_dates_both_included():
    store = MemoryHistoryStore()
    edges = ((1, "2026-01-01T10:00:00.000Z"), (2, "2026-01-02T23:59:59.999Z"),
             (3, "2026-01-03T00:00:00.000Z"))
    for n, at in edges:
        store.create(Conversation(id=f"c{n}", created_at=at, updated_at=at))
    assert [s.id for s in store.page(days=(date(2026, 1, 2), date(2026, 1, 3)))] == ["c3", "c2"]
    assert [s.id for s in store.page(days=(date(2026, 1, 2), None))] == ["c3", "c2"]
    assert [s.id for s in store.page(days=(None, date(2026, 1, 1)))] == ["c1"]
    assert [s.id for s in store.page()] == ["c3", "c2", "c1"]
