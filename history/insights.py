"""The saved history as Insights rows: one per user or assistant message, what every store keeps.

Plain functions without Streamlit. `message_rows` turns a conversation into rows, `derived_values` adds
what the stores' SQL groups by, and `messages_frame` makes the rows a DataFrame (for the CSV download,
`to_csv`). Saved files may be hand-edited or imported: a field of the wrong type counts as missing, never
as an error. Each store keeps these rows (the folder in its index, history/index.py; a database in a table
of its own) and the page draws store.insights(), the figures its engine aggregates from them
(history/insight_queries.py; tests/insights_reference.py defines them in pandas).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from operator import itemgetter

import numpy as np
import pandas as pd

from history.listing import utc_times
from history.models import Conversation
from history.transfer.csv_cells import spreadsheet_safe

COLUMNS = [
    "conversation_id",
    "created_at",  # tz-aware UTC; NaT when the message's time is missing or unreadable
    "role",  # user or assistant (system messages are not rows)
    "source",  # assistant rows: model, scripted (answered from the bot profile) or fallback; user rows: NA
    "latency_ms",
    "first_token_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "feedback",  # up or down
    "first_question",  # the conversation's first user message, on that row only
    "status",  # stopped or interrupted: a partial reply
    "starts_conversation",  # True on the conversation's first user or assistant message
]
ROLES = ("user", "assistant")
SOURCES = ("model", "scripted", "fallback")
FEEDBACK = ("up", "down")
STATUSES = ("stopped", "interrupted")
_COUNTS = ("latency_ms", "first_token_ms", "prompt_tokens", "completion_tokens", "total_tokens")
_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_MAX_COUNT = 2**31 - 1  # Int32 columns
_TRAILING = "?!. "  # stripped from the end of a question when grouping


def _count(value: object) -> int | None:
    """A non-negative number of milliseconds or tokens, rounded to a whole one; None if it is not one."""
    if type(value) is float and math.isfinite(value):
        value = round(value)
    elif type(value) is not int:  # bool is not a count
        return None
    return value if 0 <= value <= _MAX_COUNT else None


def _one_of(value: object, allowed: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def message_rows(conversation: Conversation) -> list[tuple]:
    """One tuple per user or assistant message, in COLUMNS order.

    created_at is the saved text here (None if not text); `messages_frame` makes it a UTC datetime.
    Only current messages count: earlier versions kept in `alternatives` do not.
    """
    rows: list[tuple] = []
    cid = conversation.id
    asked = False
    for message in conversation.messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            continue
        at = message.get("created_at")
        at = at if isinstance(at, str) else None
        starts = not rows
        if role == "user":
            question = None
            if not asked:
                asked = True
                content = message.get("content")
                question = content if isinstance(content, str) else None
            rows.append((cid, at, role, None, None, None, None, None, None, None, question, None, starts))
            continue
        usage = message.get("usage")
        tokens = [_count(usage.get(key)) for key in _TOKEN_KEYS] if isinstance(usage, dict) else [None] * 3
        if tokens[2] is None and None not in tokens[:2] and sum(tokens[:2]) <= _MAX_COUNT:
            tokens[2] = sum(tokens[:2])  # the total, when the server reported only its parts
        source = _one_of(message.get("source"), SOURCES[1:]) or "model"  # absent or unknown: the model
        timing = (_count(message.get("latency_ms")), _count(message.get("first_token_ms")))
        feedback = _one_of(message.get("feedback"), FEEDBACK)
        status = _one_of(message.get("status"), STATUSES)
        rows.append((cid, at, role, source, *timing, *tokens, feedback, None, status, starts))
    return rows


DERIVED = ("at_us", "day", "month", "question_key")  # what the stores' SQL groups by, made here


def derived_values(rows: list[tuple]) -> list[tuple]:
    """Per row of message_rows: its time in microseconds since 1970 (UTC), its UTC day and month as
    counts since 1970, and its first question's grouping key; parsed as messages_frame parses them, so
    the stores' SQL aggregates agree with the pandas figures (None where the frame has NaT or NA)."""
    if not rows:
        return []
    times = utc_times([row[1] for row in rows]).tz_localize(None).to_numpy(dtype="datetime64[us]")
    known = ~np.isnat(times)
    days = times.astype("datetime64[D]")
    numbers = [np.where(known, values.astype(np.int64), 0).tolist()
               for values in (times, days, days.astype("datetime64[M]"))]
    questions = [row[10] for row in rows]
    keys = question_key(pd.Series(pd.array(questions, dtype="str"))).tolist()
    return [
        (*((n[i] for n in numbers) if known[i] else (None,) * 3), keys[i] or None if question else None)
        for i, question in enumerate(questions)
    ]


def _category(values: list, categories: tuple[str, ...]) -> pd.Categorical:
    codes = {None: -1, **{name: code for code, name in enumerate(categories)}}
    return pd.Categorical.from_codes(
        np.fromiter(map(codes.__getitem__, values), dtype=np.int8, count=len(values)), categories=categories
    )


def _ints(values: list) -> pd.arrays.IntegerArray:
    """A nullable Int32 column (NA where missing), built through float64, which is exact here."""
    floats = np.array(values, dtype=np.float64)
    missing = np.isnan(floats)
    return pd.arrays.IntegerArray(np.where(missing, 0, floats).astype(np.int32), missing)


def messages_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """The rows message_rows made (as a store keeps them) as a DataFrame, one typed column each."""
    rows = list(rows)
    data = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(COLUMNS)}  # faster than zip(*rows)
    codes, ids = pd.factorize(np.array(data["conversation_id"], dtype=object))
    frame = {
        "conversation_id": pd.Categorical.from_codes(codes, categories=ids),
        "created_at": utc_times(data["created_at"]),
        "role": _category(data["role"], ROLES),
        "source": _category(data["source"], SOURCES),
        **{name: _ints(data[name]) for name in _COUNTS},
        "feedback": _category(data["feedback"], FEEDBACK),
        "first_question": pd.array(data["first_question"], dtype="str"),
        "status": _category(data["status"], STATUSES),
        "starts_conversation": np.array(data["starts_conversation"], dtype=bool),
    }
    return pd.DataFrame(frame, columns=COLUMNS)


def between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    """Rows from the start day through the end day (UTC dates, both included); None leaves a side open.

    With either bound, rows without a time are left out.
    """
    if start is None and end is None:
        return frame
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["created_at"] >= pd.Timestamp(as_day(start), tz="UTC")
    if end is not None:
        keep &= frame["created_at"] < pd.Timestamp(as_day(end) + timedelta(days=1), tz="UTC")
    return frame[keep]


def as_day(value: date) -> date:
    """The day of a date or a datetime (a datetime is a date, but does not compare with one)."""
    return value.date() if isinstance(value, datetime) else value


def question_key(questions: pd.Series) -> pd.Series:
    """Grouping key of first questions: any case, whitespace collapsed, trailing ? ! . dropped."""
    collapsed = questions.str.replace(r"\s+", " ", regex=True).str.strip()
    return collapsed.str.rstrip(_TRAILING).str.casefold()


def to_csv(frame: pd.DataFrame) -> bytes:
    """The message rows as UTF-8 CSV, oldest first, times as ISO-8601 UTC with milliseconds (…Z); text
    that a spreadsheet would run as a formula starts with a quote (history/transfer/csv_cells.py)."""
    ordered = frame.sort_values(["created_at", "conversation_id"], kind="stable", na_position="last")
    times = ordered["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    safe = spreadsheet_safe(ordered.drop(columns="created_at")).assign(created_at=times)[ordered.columns]
    # RFC 4180 line ends, so a carriage return inside a message is quoted like a line feed
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
