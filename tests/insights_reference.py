"""The Insights figures in pandas, over history.insights.messages_frame: what each figure means.

The page draws store.insights(), aggregated by each store's SQL (history/insight_queries.py); these
functions are the definition those queries are tested against (tests/test_insights_sql.py) and the
baseline the Insights benchmarks compare with (bench/).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from history.insight_queries import bucket_numbers, bucket_starts, pick_bucket, share, top_spellings
from history.insights import FEEDBACK, SOURCES, message_rows, messages_frame, question_key
from history.models import Conversation


def frame_of(conversations: Iterable[Conversation]) -> pd.DataFrame:
    """history.insights.messages_frame of these conversations, as a store would hand it over."""
    return messages_frame([row for conversation in conversations for row in message_rows(conversation)])


def _day_values(frame: pd.DataFrame) -> np.ndarray:
    """The rows' UTC days (datetime64[D]), NaT where a row has no time."""
    naive = frame["created_at"].dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[us]").astype("datetime64[D]")


def bucket_size(frame: pd.DataFrame) -> str:
    """What a row of the per-day figures covers here: day, week, month, year, decade or century."""
    days = _day_values(frame)
    days = days[~np.isnat(days)]
    return pick_bucket(days)[0] if len(days) else "day"


def _days(frame: pd.DataFrame) -> tuple[pd.Series, pd.DatetimeIndex]:
    """Each row's bucket as a tz-naive midnight (NaT without a time), and every bucket from the first to
    the last with a message, so quiet ones show too. Buckets are days unless the range is long."""
    values = _day_values(frame)
    known = ~np.isnat(values)
    if not known.any():
        return pd.Series(values.astype("datetime64[us]"), index=frame.index), pd.DatetimeIndex(
            [], dtype="datetime64[us]", name="day"
        )
    name, unit, step = pick_bucket(values[known])
    numbers = np.zeros(len(values), dtype=np.int64)
    numbers[known] = bucket_numbers(values[known], unit, step)
    starts = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[us]")
    starts[known] = bucket_starts(numbers[known], unit, step)
    every = np.arange(numbers[known].min(), numbers[known].max() + 1)
    calendar = pd.DatetimeIndex(bucket_starts(every, unit, step), name=name)
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


def top_first_questions(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The n first questions most conversations opened with, under their most common spelling.

    Ties (in count, or between spellings) go to the question asked first.
    """
    asked = frame.loc[frame["first_question"].notna(), ["first_question", "created_at"]]
    asked = asked.assign(key=question_key(asked["first_question"]))
    asked = asked[asked["key"] != ""]
    spellings = asked.groupby(["key", "first_question"])["created_at"].agg(["size", "min"])
    return top_spellings(spellings.reset_index(), n)


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
        "thumbs_up_share": share(up, up + down),
        "scripted_share": share(int(frame["source"].eq("scripted").sum()), answers),
    }
