"""Figures for the Insights page, computed with pandas from the saved history: one row per message.

Plain functions without Streamlit. `messages_frame` turns conversations into rows of user and
assistant messages; every figure takes such a frame (or a slice from `between`). Saved files may
be hand-edited or imported: a field of the wrong type counts as missing, never as an error.
Each store keeps the rows `message_rows` makes (the folder in its index, history/index.py; a database
in a table of its own), so the frame is read from them, not from every conversation. The page itself
draws store.insights(), the same figures aggregated by the store's engine (history/insight_queries.py);
these functions define them, and the frame is still built for the CSV download.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from operator import itemgetter

import numpy as np
import pandas as pd

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
    times = _times([row[1] for row in rows]).tz_localize(None).to_numpy(dtype="datetime64[us]")
    known = ~np.isnat(times)
    days = times.astype("datetime64[D]")
    numbers = [np.where(known, values.astype(np.int64), 0).tolist()
               for values in (times, days, days.astype("datetime64[M]"))]
    questions = [row[10] for row in rows]
    keys = _question_key(pd.Series(pd.array(questions, dtype="str"))).tolist()
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


def _times(values: list) -> pd.DatetimeIndex:
    """ISO-8601 texts as UTC datetimes (a time without zone is UTC); NaT where one does not parse."""
    times = pd.to_datetime(pd.Index(values, dtype=object), utc=True, format="ISO8601", errors="coerce")
    return times.as_unit("us")  # the same unit whatever the values, or none


def messages_frame(conversations_or_rows: Iterable[Conversation | tuple]) -> pd.DataFrame:
    """The frame every figure uses: Conversations go through message_rows; tuples are rows it made."""
    rows: list[tuple] = []
    for item in conversations_or_rows:
        if isinstance(item, tuple):
            rows.append(item)
        else:
            rows.extend(message_rows(item))
    data = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(COLUMNS)}  # faster than zip(*rows)
    codes, ids = pd.factorize(np.array(data["conversation_id"], dtype=object))
    frame = {
        "conversation_id": pd.Categorical.from_codes(codes, categories=ids),
        "created_at": _times(data["created_at"]),
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
        keep &= frame["created_at"] >= pd.Timestamp(_day(start), tz="UTC")
    if end is not None:
        keep &= frame["created_at"] < pd.Timestamp(_day(end) + timedelta(days=1), tz="UTC")
    return frame[keep]


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


# Bucket sizes, smallest first, as (name, numpy unit, how many of that unit): the charts use the smallest
# that keeps them to MAX_BUCKETS rows, so a clock or import that got a year wrong cannot make them draw
# every day of centuries.
BUCKETS = (("day", "D", 1), ("week", "D", 7), ("month", "M", 1), ("year", "Y", 1), ("decade", "Y", 10),
           ("century", "Y", 100))
MAX_BUCKETS = 400
_MONDAY = np.datetime64("1969-12-29", "D")  # weeks start on Mondays
_EPOCH_YEAR = 1970


def _bucket_numbers(days: np.ndarray, unit: str, step: int) -> np.ndarray:
    """Each day's bucket as a count of buckets since a fixed start (days: datetime64[D])."""
    if step == 7:
        return (days - _MONDAY).astype(np.int64) // 7
    counts = days.astype(f"datetime64[{unit}]").astype(np.int64)  # since 1970
    return counts if step == 1 else (counts + _EPOCH_YEAR) // step  # decades and centuries of the calendar


def _bucket_starts(numbers: np.ndarray, unit: str, step: int) -> np.ndarray:
    if step == 7:
        return (_MONDAY + numbers * 7).astype("datetime64[us]")
    counts = numbers if step == 1 else numbers * step - _EPOCH_YEAR
    return counts.astype(f"datetime64[{unit}]").astype("datetime64[us]")


def _pick_bucket(days: np.ndarray) -> tuple[str, str, int]:
    """The smallest bucket that covers the days' range in at most MAX_BUCKETS rows."""
    first, last = days.min(), days.max()
    for name, unit, step in BUCKETS:
        ends = _bucket_numbers(np.array([first, last]), unit, step)
        if ends[1] - ends[0] < MAX_BUCKETS:
            return name, unit, step
    return BUCKETS[-1]


def _day_values(frame: pd.DataFrame) -> np.ndarray:
    """The rows' UTC days (datetime64[D]), NaT where a row has no time."""
    naive = frame["created_at"].dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[us]").astype("datetime64[D]")


def bucket_size(frame: pd.DataFrame) -> str:
    """What a row of the per-day figures covers here: day, week, month, year, decade or century."""
    days = _day_values(frame)
    days = days[~np.isnat(days)]
    return _pick_bucket(days)[0] if len(days) else "day"


def _days(frame: pd.DataFrame) -> tuple[pd.Series, pd.DatetimeIndex]:
    """Each row's bucket as a tz-naive midnight (NaT without a time), and every bucket from the first to
    the last with a message, so quiet ones show too. Buckets are days unless the range is long."""
    values = _day_values(frame)
    known = ~np.isnat(values)
    if not known.any():
        return pd.Series(values.astype("datetime64[us]"), index=frame.index), pd.DatetimeIndex(
            [], dtype="datetime64[us]", name="day"
        )
    name, unit, step = _pick_bucket(values[known])
    numbers = np.zeros(len(values), dtype=np.int64)
    numbers[known] = _bucket_numbers(values[known], unit, step)
    starts = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[us]")
    starts[known] = _bucket_starts(numbers[known], unit, step)
    every = np.arange(numbers[known].min(), numbers[known].max() + 1)
    calendar = pd.DatetimeIndex(_bucket_starts(every, unit, step), name=name)
    return pd.Series(starts, index=frame.index), calendar


def _per_day(values: pd.Series, days: pd.Series, calendar: pd.DatetimeIndex) -> pd.Series:
    """Sum of values per day, 0 on days without any."""
    return values.groupby(days).sum().reindex(calendar, fill_value=0).astype("int64")


def daily_activity(frame: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day: conversations started (their first message that day) and messages."""
    days, calendar = _days(frame)
    counts = {"conversations": frame["starts_conversation"], "messages": pd.Series(1, index=frame.index)}
    return pd.DataFrame(
        {name: _per_day(rows, days, calendar) for name, rows in counts.items()}, index=calendar
    )


def _model_answers(frame: pd.DataFrame) -> pd.Series:
    return frame["role"].eq("assistant") & frame["source"].eq("model")


def reply_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day, over the model's answers: median and p90 latency, median first token, tokens used.

    Latency leaves out partial replies (stopped or interrupted: their time is when they ended, not
    how long the model takes); first token and tokens count them. Days without answers are NaN and 0.
    """
    days, calendar = _days(frame)
    model = _model_answers(frame)
    answers, on = frame[model], days[model]
    complete = answers["status"].isna()
    latency = answers["latency_ms"].astype("float64")[complete].groupby(on[complete])
    first_token = answers["first_token_ms"].astype("float64").groupby(on)
    return pd.DataFrame(
        {
            "latency_median_ms": latency.median().reindex(calendar),
            "latency_p90_ms": latency.quantile(0.9).reindex(calendar),
            "first_token_median_ms": first_token.median().reindex(calendar),
            "total_tokens": _per_day(answers["total_tokens"].astype("Int64"), on, calendar),
        },
        index=calendar,
    )


def feedback_by_day(frame: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day of the rated reply: thumbs up, down, and the share up (NaN on days without any)."""
    days, calendar = _days(frame)
    up = _per_day(frame["feedback"].eq("up"), days, calendar)
    down = _per_day(frame["feedback"].eq("down"), days, calendar)
    rated = up + down
    return pd.DataFrame({"up": up, "down": down, "share_up": up.div(rated.where(rated > 0))}, index=calendar)


def answer_sources(frame: pd.DataFrame) -> pd.DataFrame:
    """Assistant answers by source (model, scripted, fallback; always all three) and their share."""
    sources = frame.loc[frame["role"].eq("assistant"), "source"]
    answers = sources.value_counts().reindex(list(SOURCES), fill_value=0).astype("int64")
    total = int(answers.sum())
    result = pd.DataFrame({"answers": answers, "share": answers / total if total else math.nan})
    result.index.name = "source"
    return result


def _question_key(questions: pd.Series) -> pd.Series:
    """Grouping key: any case, whitespace collapsed, trailing ? ! . dropped."""
    collapsed = questions.str.replace(r"\s+", " ", regex=True).str.strip()
    return collapsed.str.rstrip(_TRAILING).str.casefold()


def top_first_questions(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The n first questions most conversations opened with, under their most common spelling.

    Ties (in count, or between spellings) go to the question asked first.
    """
    asked = frame.loc[frame["first_question"].notna(), ["first_question", "created_at"]]
    asked = asked.assign(key=_question_key(asked["first_question"]))
    asked = asked[asked["key"] != ""]
    spellings = asked.groupby(["key", "first_question"])["created_at"].agg(["size", "min"])
    return top_spellings(spellings.reset_index(), n)


def top_spellings(spellings: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """top_first_questions from each spelling's key, text, size and first time (a store's SQL counts them)."""
    spellings = spellings.sort_values(["key", "first_question"], kind="stable", ignore_index=True)
    spellings["conversations"] = spellings.groupby("key")["size"].transform("sum")
    spellings["first"] = spellings.groupby("key")["min"].transform("min")
    best = spellings.sort_values(["size", "min"], ascending=[False, True], na_position="last")
    best = best.drop_duplicates("key")
    best = best.sort_values(["conversations", "first"], ascending=[False, True], na_position="last")
    top = best.head(n).rename(columns={"first_question": "question"})
    return top[["question", "conversations"]].astype({"conversations": "int64"}).reset_index(drop=True)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def headline(frame: pd.DataFrame) -> dict:
    """The page's headline numbers; None where there is nothing to measure.

    conversations: started in the frame (as daily_activity counts them); active_conversations: with
    any message in it. median_latency_ms: the model's complete answers, as in reply_times.
    """
    complete = _model_answers(frame) & frame["status"].isna()
    latency = frame.loc[complete, "latency_ms"].astype("float64").median()
    up, down = (int(frame["feedback"].eq(rating).sum()) for rating in FEEDBACK)
    answers = int(frame["role"].eq("assistant").sum())
    return {
        "conversations": int(frame["starts_conversation"].sum()),
        "active_conversations": int(frame["conversation_id"].nunique()),
        "messages": len(frame),
        "median_latency_ms": None if math.isnan(latency) else float(latency),
        "thumbs_up_share": _share(up, up + down),
        "scripted_share": _share(int(frame["source"].eq("scripted").sum()), answers),
    }


def to_csv(frame: pd.DataFrame) -> bytes:
    """The message rows as UTF-8 CSV, oldest first, times as ISO-8601 UTC with milliseconds (…Z); text
    that a spreadsheet would run as a formula starts with a quote (history/transfer/csv_cells.py)."""
    ordered = frame.sort_values(["created_at", "conversation_id"], kind="stable", na_position="last")
    times = ordered["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    safe = spreadsheet_safe(ordered.drop(columns="created_at")).assign(created_at=times)[ordered.columns]
    # RFC 4180 line ends, so a carriage return inside a message is quoted like a line feed
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
