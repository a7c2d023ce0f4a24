"""The history table the app shows: one row per conversation, in the store's order (newest first)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd

from history.models import ConversationSummary

COLUMNS = ["id", "title", "created", "updated", "messages", "model"]


def utc_times(values: list) -> pd.DatetimeIndex:
    """ISO-8601 texts as UTC datetimes (a time without zone is UTC); a hand-edited time that does not
    parse becomes NaT, not an error."""
    parsed = pd.to_datetime(pd.Index(values, dtype=object), utc=True, format="ISO8601", errors="coerce")
    return parsed.as_unit("us")  # the same unit whatever the values, or none


def day_bounds(days: tuple[date | None, date | None]) -> tuple[float | None, float | None]:
    """The epoch seconds a listing's sort key must be at least and below for those UTC days."""
    first, last = days
    start = datetime.combine(first, time(), UTC).timestamp() if first else None
    end = datetime.combine(last + timedelta(days=1), time(), UTC).timestamp() if last else None
    return start, end


def conversations_table(summaries: Iterable[ConversationSummary]) -> pd.DataFrame:
    """The summaries in the order given (a store's page, a search's relevance), column by column."""
    rows = list(summaries)
    return pd.DataFrame(
        {
            "id": pd.Series([s.id for s in rows], dtype="str"),
            "title": pd.Series([s.title for s in rows], dtype="str"),
            "created": utc_times([s.created_at for s in rows]),
            "updated": utc_times([s.updated_at for s in rows]),
            "messages": pd.Series([s.message_count for s in rows], dtype="int64"),
            "model": pd.Series([s.model for s in rows], dtype="str"),
        },
        columns=COLUMNS,
    )
