"""The history table the app shows: one row per conversation, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from history.models import ConversationSummary

COLUMNS = ["id", "title", "created", "updated", "messages", "model"]


def _times(values: list[str]) -> pd.DatetimeIndex:
    """UTC datetimes; a hand-edited time that does not parse becomes NaT, not an error."""
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    return parsed.as_unit("us")  # same dtype whether the list is empty or not


def conversations_table(summaries: Iterable[ConversationSummary]) -> pd.DataFrame:
    """Built column by column, which stays fast for tens of thousands of rows."""
    rows = list(summaries)
    table = pd.DataFrame(
        {
            "id": pd.Series([s.id for s in rows], dtype="str"),
            "title": pd.Series([s.title for s in rows], dtype="str"),
            "created": _times([s.created_at for s in rows]),
            "updated": _times([s.updated_at for s in rows]),
            "messages": pd.Series([s.message_count for s in rows], dtype="int64"),
            "model": pd.Series([s.model for s in rows], dtype="str"),
        },
        columns=COLUMNS,
    )
    return table.sort_values("updated", ascending=False, kind="stable", na_position="last", ignore_index=True)


def filter_table(table: pd.DataFrame, first: date | None = None, last: date | None = None) -> pd.DataFrame:
    """The rows last updated between two UTC dates, both included; a missing end is open."""
    days = table["updated"].dt.date
    keep = pd.Series(True, index=table.index)
    if first is not None:
        keep &= days >= first
    if last is not None:
        keep &= days <= last
    return table[keep].reset_index(drop=True)
