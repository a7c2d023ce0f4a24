"""The Insights page's figures answered by a store's SQL engine: sums over per-day totals and a few
ordered look-ups for the percentiles in the database, pandas only on what comes back (a row per day or per
spelling), so a fresh server never reads every message into Python.

Written once in SQLAlchemy Core for every store: the database store runs the queries on its engine
(SQLite or PostgreSQL); the JSON folder and the memory store compile them for their SQLite index
(history/index.py). Each store hands over its insight rows and their day totals as `Messages`, built from
history.insights.message_rows and derived_values when each conversation was written. The figures equal
tests/insights_reference.py's pandas functions over store.insight_rows() (tests/test_insights_sql.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from history.insights import SOURCES, as_day

NAMES = ("conversation", "day", "month", "at_us", "role", "source", "latency_ms", "first_token_ms",
         "total_tokens", "feedback", "status", "starts", "question", "question_key")
# A query's rows (with values for its named parameters), through the store's own fault handling
Run = Callable[..., Sequence[Sequence]]
_EPOCH = date(1970, 1, 1)
_P90 = 0.9
_SKIP, _TAKE = sa.bindparam("skip", type_=sa.Integer), sa.bindparam("take", type_=sa.Integer)

# Bucket sizes, smallest first, as (name, numpy unit, how many of that unit): the charts use the smallest
# that keeps them to MAX_BUCKETS rows, so a clock or import that got a year wrong cannot make them draw
# every day of centuries.
BUCKETS = (("day", "D", 1), ("week", "D", 7), ("month", "M", 1), ("year", "Y", 1), ("decade", "Y", 10),
           ("century", "Y", 100))
MAX_BUCKETS = 400
_MONDAY = np.datetime64("1969-12-29", "D")  # weeks start on Mondays
_EPOCH_YEAR = 1970


DAY_TOTALS = ("messages", "conversations", "up", "down", "answers", *SOURCES, "scripted_rows", "tokens",
              "latencies", "first_tokens")  # per conversation and day: what day_totals counts


@dataclass(frozen=True)
class Messages:
    """A store's insight rows as SQL sees them. `rows` has the columns NAMES; the percentiles read them,
    a few values per bucket in order (an index on day and value). `days` has day_totals' rows
    (conversation, day, month, DAY_TOTALS, question, question_key, question_at_us), one per conversation
    and day: every count and the top questions come from them. `decode` turns a fetched question or key
    back into text (a database keeps them as JSON, as they may hold NUL)."""

    rows: sa.Subquery
    days: sa.Subquery
    decode: Callable[[object], object] = str


def day_totals(rows: Sequence[tuple]) -> list[tuple]:
    """message_rows of one conversation with their derived_values, summed per UTC day (None: undated)
    in DAY_TOTALS order, then the day's month and the first question, its key and time if it is that day's."""
    totals: dict[object, list] = {}
    for (_, _, role, source, latency, first_token, _, _, tokens, feedback, question, status, starts,
         at_us, day, month, key) in rows:
        found = totals.get(day)
        if found is None:
            found = totals[day] = [0] * len(DAY_TOTALS) + [month, None, None, None]
        answer = role == "assistant"
        model = answer and source == "model"
        counts = (1, starts, feedback == "up", feedback == "down", answer, answer and source == "model",
                  answer and source == "scripted", answer and source == "fallback", source == "scripted",
                  tokens or 0 if model else 0, model and latency is not None and status is None,
                  model and first_token is not None)
        for n, value in enumerate(counts):
            found[n] += int(value)
        if key is not None:
            found[-3:] = [question, key, at_us]
    return [(day, *values) for day, values in totals.items()]


@dataclass(frozen=True)
class Insights:
    """What the Insights page draws for a date range (tests/insights_reference.py defines each figure)."""

    headline: dict
    activity: pd.DataFrame  # daily_activity
    reply_times: pd.DataFrame
    feedback: pd.DataFrame  # feedback_by_day
    sources: pd.DataFrame  # answer_sources
    top_questions: pd.DataFrame  # top_first_questions
    bucket: str  # bucket_size: what a row of the per-day figures covers
    dates: tuple[date, date] | None  # the first and last UTC day of any message, for the date picker
    messages: int  # how many messages the whole history has, dated or not
    undated: int  # how many of them have no readable time (on no day: a date range leaves them out)


def _day_number(value: date) -> int:
    return (as_day(value) - _EPOCH).days


def _between(table, start: date | None, end: date | None) -> list:
    """As history.insights.between: whole UTC days, both included; with a bound, undated rows are out."""
    clauses = []
    if start is not None:
        clauses.append(table.c.day >= _day_number(start))
    if end is not None:
        clauses.append(table.c.day <= _day_number(end))
    return clauses


def _sum(value) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(value), 0)


def _model(m) -> sa.ColumnElement:
    """The model's answers, its words written into the SQL, so SQLite sees its partial indexes apply."""
    return sa.and_(m.c.role == sa.literal_column("'assistant'"), m.c.source == sa.literal_column("'model'"))


def insights(run: Run, messages: Messages, start: date | None, end: date | None) -> Insights:
    """Every figure of the page from the rows from start through end (UTC days; None: open)."""
    m, totals = messages.rows, messages.days
    day = totals.c.day
    undated = _sum(sa.case((day.is_(None), totals.c.messages)))
    span = run(sa.select(sa.func.min(day), sa.func.max(day), _sum(totals.c.messages), undated))[0]
    dates = None if span[0] is None else (_EPOCH + timedelta(days=span[0]), _EPOCH + timedelta(days=span[1]))
    where = _between(totals, start, end)
    per_day = _summed_days(run, totals, where)
    dated = per_day[per_day["day"].notna()]
    days = np.asarray(dated["day"].astype("int64"), dtype="datetime64[D]")
    picked = pick_bucket(days) if len(days) else BUCKETS[0]
    calendar, positions = _calendar(days, picked)
    sums = {name: _sums(dated[name], positions, calendar) for name in
            ("conversations", "messages", "up", "down", "tokens", "latencies", "first_tokens")}
    buckets = _Buckets(run, m, _between(m, start, end), dated["day"].to_numpy(dtype=np.int64), positions)
    overall = {name: int(per_day[name].sum()) for name in DAY_TOTALS}  # the undated rows' too
    latency = buckets.quantiles("latency_ms", sums["latencies"], overall["latencies"])
    first_token = buckets.quantiles("first_token_ms", sums["first_tokens"], overall["first_tokens"])
    rated = sums["up"] + sums["down"]
    return Insights(
        headline=_headline(run, totals, where, overall, latency[2]),
        activity=pd.DataFrame({"conversations": sums["conversations"], "messages": sums["messages"]},
                              index=calendar),
        reply_times=pd.DataFrame({"latency_median_ms": latency[0], "latency_p90_ms": latency[1],
                                  "first_token_median_ms": first_token[0], "total_tokens": sums["tokens"]},
                                 index=calendar),
        feedback=pd.DataFrame({"up": sums["up"], "down": sums["down"],
                               "share_up": sums["up"].div(rated.where(rated > 0))}, index=calendar),
        sources=_sources(overall),
        top_questions=_top_questions(run, messages, where),
        bucket=picked[0],
        dates=dates,
        messages=span[2],
        undated=span[3],
    )


def _summed_days(run: Run, totals, where: list) -> pd.DataFrame:
    """One row per UTC day (and one for undated rows) with every count the figures sum."""
    query = sa.select(totals.c.day, *(_sum(totals.c[name]).label(name) for name in DAY_TOTALS))
    rows = run(query.where(*where).group_by(totals.c.day))
    frame = pd.DataFrame([tuple(row) for row in rows], columns=["day", *DAY_TOTALS], dtype=object)
    return frame.astype({name: "int64" for name in DAY_TOTALS})


def _calendar(days: np.ndarray, picked: tuple[str, str, int]) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Every bucket from the first to the last day with a message, and each day's place in it."""
    name, unit, step = picked
    if not len(days):
        return pd.DatetimeIndex([], dtype="datetime64[us]", name="day"), np.zeros(0, dtype=np.int64)
    numbers = bucket_numbers(days, unit, step)
    every = np.arange(numbers.min(), numbers.max() + 1)
    return pd.DatetimeIndex(bucket_starts(every, unit, step), name=name), numbers - numbers.min()


def _sums(values: pd.Series, positions: np.ndarray, calendar: pd.DatetimeIndex) -> pd.Series:
    totals = np.zeros(len(calendar), dtype=np.int64)
    np.add.at(totals, positions, values.to_numpy(dtype=np.int64))
    return pd.Series(totals, index=calendar)


class _Buckets:
    """Percentiles of the model's answers per bucket, exactly as pandas interpolates them, from each
    bucket's count of values (the day totals' sums): only the two or three values around the median and
    the 90th percentile are read, in order (the store's index on day and value)."""

    def __init__(self, run: Run, m, where: list, days: np.ndarray, positions: np.ndarray) -> None:
        self.run, self.m, self.where = run, m, where
        self.spans = pd.Series(days).groupby(positions).agg(["min", "max"])  # each bucket's first, last day

    def quantiles(self, column: str, sizes: pd.Series, total: int) -> tuple:
        """Per bucket (`sizes`: how many values each has) the median and 90th percentile of a column (NaN
        without values), and the median of all `total` values, dated or not (latency: complete answers)."""
        m, value = self.m, self.m.c[column]
        answers = [_model(m), value.is_not(None), *([m.c.status.is_(None)] if column == "latency_ms" else [])]
        first, last = sa.bindparam("first", type_=sa.Integer), sa.bindparam("last", type_=sa.Integer)
        # each run for every bucket: one day reads its index in order, a longer bucket sorts its values
        one_day = _ordered(value, [*answers, *self.where, m.c.day == first])
        some_days = _ordered(value, [*answers, *self.where, m.c.day >= first, m.c.day <= last])
        every_day = _ordered(value, [*answers, *self.where])
        medians = pd.Series(math.nan, index=sizes.index)
        p90 = pd.Series(math.nan, index=sizes.index)
        for place, size in enumerate(sizes.tolist()):
            if size:
                days = {"first": int(self.spans.at[place, "min"]), "last": int(self.spans.at[place, "max"])}
                query = one_day if days["first"] == days["last"] else some_days
                medians.iloc[place] = _median(self._around(query, (size - 1) // 2, 2, days), size)
                if column == "latency_ms":  # the chart has no 90th percentile of the first token
                    ninth = (size - 1) * 9 // 10  # pandas' float position can be one less: fetch around it
                    p90.iloc[place] = _quantile(self._around(query, max(ninth - 1, 0), 3, days), size, _P90)
        return medians, p90, _median(self._around(every_day, (total - 1) // 2, 2), total) if total else None

    def _around(self, query: sa.Select, start: int, count: int, days: dict | None = None) -> dict[int, float]:
        """`count` values of an _ordered query from the `start`-th (from 0), by their place."""
        found = self.run(query, {"skip": start, "take": count, **(days or {})})
        return {start + n: float(row[0]) for n, row in enumerate(found)}


def _ordered(value, where: list) -> sa.Select:
    """The values where `where` holds, in order, `take` of them after the first `skip`; one query per
    figure, run for each bucket with its own parameters (the folder index compiles it once)."""
    return sa.select(value).where(*where).order_by(value).offset(_SKIP).limit(_TAKE)


def _median(values: dict[int, float], size: int) -> float:
    return (values[(size - 1) // 2] + values[size // 2]) / 2


def _quantile(values: dict[int, float], size: int, q: float) -> float:
    """pandas' groupby quantile, linear interpolation, from the values around its position."""
    position = q * (size - 1)
    index = int(position)
    fraction = position % 1
    if fraction == 0.0:
        return values[index]
    low = values[index]
    return low + (values[index + 1] - low) * fraction


def _headline(run: Run, days, where: list, overall: dict[str, int], median: float | None) -> dict:
    """tests/insights_reference.py's headline from the range's totals; conversations with any message
    are counted by the engine."""
    active = run(sa.select(sa.func.count(sa.distinct(days.c.conversation))).where(*where))[0][0]
    return {
        "conversations": overall["conversations"],
        "active_conversations": int(active),
        "messages": overall["messages"],
        "median_latency_ms": median,
        "thumbs_up_share": share(overall["up"], overall["up"] + overall["down"]),
        "scripted_share": share(overall["scripted_rows"], overall["answers"]),
    }


def _sources(overall: dict[str, int]) -> pd.DataFrame:
    """tests/insights_reference.py's answer_sources from the range's totals."""
    answers = pd.Series([overall[name] for name in SOURCES], dtype="int64",
                        index=pd.Index(list(SOURCES), dtype="str", name="source"))
    total = int(answers.sum())
    return pd.DataFrame({"answers": answers, "share": answers / total if total else math.nan})


def _top_questions(run: Run, messages: Messages, where: list, n: int = 10) -> pd.DataFrame:
    """tests/insights_reference.py's top_first_questions: spellings grouped in the engine from the day
    totals; only the keys that can be among the first n (ties at the n-th included) come back, to be
    ordered as pandas orders them."""
    days = messages.days
    question, key, at = days.c.question, days.c.question_key, days.c.question_at_us
    spellings = (
        sa.select(key.label("key"), question.label("question"),
                  sa.func.count().label("size"), sa.func.min(at).label("first"))
        .where(question.is_not(None), key.is_not(None), *where).group_by(key, question).subquery()
    )
    s = spellings.c
    keys = sa.select(s.key, sa.func.sum(s.size).label("total"), sa.func.min(s.first).label("first"))
    keys = keys.group_by(s.key).subquery()
    k = keys.c
    order = (k.total.desc(), sa.case((k.first.is_(None), 1), else_=0), k.first)
    cut = run(sa.select(k.total, k.first).order_by(*order).offset(n - 1).limit(1))
    query = sa.select(s.key, s.question, s.size, s.first).join(keys, k.key == s.key)
    if cut:
        total, first = cut[0]
        later = sa.true() if first is None else sa.and_(k.first.is_not(None), k.first <= first)
        query = query.where(sa.or_(k.total > total, sa.and_(k.total == total, later)))
    rows = run(query)
    spellings = pd.DataFrame({
        "key": pd.array([messages.decode(row[0]) for row in rows], dtype="str"),
        "first_question": pd.array([messages.decode(row[1]) for row in rows], dtype="str"),
        "size": np.array([row[2] for row in rows], dtype=np.int64),
        "min": pd.array([row[3] for row in rows], dtype="Int64"),
    })
    return top_spellings(spellings, n)


def bucket_numbers(days: np.ndarray, unit: str, step: int) -> np.ndarray:
    """Each day's bucket as a count of buckets since a fixed start (days: datetime64[D])."""
    if step == 7:
        return (days - _MONDAY).astype(np.int64) // 7
    counts = days.astype(f"datetime64[{unit}]").astype(np.int64)  # since 1970
    return counts if step == 1 else (counts + _EPOCH_YEAR) // step  # decades and centuries of the calendar


def bucket_starts(numbers: np.ndarray, unit: str, step: int) -> np.ndarray:
    """The first moment of each bucket bucket_numbers counted, as tz-naive datetime64[us]."""
    if step == 7:
        return (_MONDAY + numbers * 7).astype("datetime64[us]")
    counts = numbers if step == 1 else numbers * step - _EPOCH_YEAR
    return counts.astype(f"datetime64[{unit}]").astype("datetime64[us]")


def pick_bucket(days: np.ndarray) -> tuple[str, str, int]:
    """The smallest bucket that covers the days' range in at most MAX_BUCKETS rows."""
    first, last = days.min(), days.max()
    for name, unit, step in BUCKETS:
        ends = bucket_numbers(np.array([first, last]), unit, step)
        if ends[1] - ends[0] < MAX_BUCKETS:
            return name, unit, step
    return BUCKETS[-1]


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def top_spellings(spellings: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The n first questions most conversations opened with, under their most common spelling, from each
    spelling's key, text, size and first time; ties (in count, or between spellings) go to the question
    asked first."""
    spellings = spellings.sort_values(["key", "first_question"], kind="stable", ignore_index=True)
    spellings["conversations"] = spellings.groupby("key")["size"].transform("sum")
    spellings["first"] = spellings.groupby("key")["min"].transform("min")
    best = spellings.sort_values(["size", "min"], ascending=[False, True], na_position="last")
    best = best.drop_duplicates("key")
    best = best.sort_values(["conversations", "first"], ascending=[False, True], na_position="last")
    top = best.head(n).rename(columns={"first_question": "question"})
    return top[["question", "conversations"]].astype({"conversations": "int64"}).reset_index(drop=True)
