"""The Insights page's figures answered by a store's SQL engine: GROUP BY and window functions in the
database, pandas only on what comes back (a row per day, per bucket or per spelling), so a fresh server
never reads every message into Python.

Written once in SQLAlchemy Core for every store: the database store runs the queries on its engine
(SQLite or PostgreSQL); the JSON folder and the memory store compile them for their SQLite index
(history/index.py). Each store hands over its insight rows as `Messages`, a subquery with the columns
NAMES, built from history.insights.message_rows and derived_values when each row was written. The
figures equal history/insights.py's pandas functions over store.insight_rows() (tests/test_insights_sql.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from history import insights as figures
from history.insights import BUCKETS, SOURCES

NAMES = ("conversation", "day", "month", "at_us", "role", "source", "latency_ms", "first_token_ms",
         "total_tokens", "feedback", "status", "starts", "question", "question_key")
# A query's rows (with values for its named parameters), through the store's own fault handling
Run = Callable[..., Sequence[Sequence]]
_EPOCH = date(1970, 1, 1)
_P90 = 0.9


DAY_TOTALS = ("messages", "conversations", "up", "down", "answers", *SOURCES, "scripted_rows", "tokens",
              "latencies", "first_tokens")  # per conversation and day: what day_totals counts


@dataclass(frozen=True)
class Messages:
    """A store's insight rows as SQL sees them: `rows` has the columns NAMES; `decode` turns a fetched
    question or key back into text (a database keeps them as JSON, as they may hold NUL). `days`, when
    the store keeps day_totals' rows (conversation, day, month, DAY_TOTALS, question, question_key,
    question_at_us), answers the counts from one row per conversation and day instead of every message,
    and the day-by-day percentiles from the few values each needs (an index on day and value)."""

    rows: sa.Subquery
    decode: Callable[[object], object] = str
    days: sa.Subquery | None = None


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
    """What the Insights page draws for a date range (history/insights.py says what each figure means)."""

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
    return (figures._day(value) - _EPOCH).days


def _between(m, start: date | None, end: date | None) -> list:
    """As history.insights.between: whole UTC days, both included; with a bound, undated rows are out."""
    clauses = []
    if start is not None:
        clauses.append(m.c.day >= _day_number(start))
    if end is not None:
        clauses.append(m.c.day <= _day_number(end))
    return clauses


def _floor_div(value, step: int):
    """Floor division of an integer expression, the same in SQLite and PostgreSQL (their / truncates)."""
    return (value - ((value % step) + step) % step) // step


def _bucket_expression(m, name: str):
    """Each row's bucket number, as history.insights._bucket_numbers counts them."""
    if name == "day":
        return m.c.day
    if name == "week":
        return _floor_div(m.c.day + 3, 7)  # weeks since Monday 1969-12-29
    if name == "month":
        return m.c.month
    years = _floor_div(m.c.month, 12)
    return years if name == "year" else _floor_div(years + 1970, 10 if name == "decade" else 100)


def _count_if(condition) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _model(m) -> sa.ColumnElement:
    """The model's answers, its words written into the SQL, so SQLite sees its partial indexes apply."""
    return sa.and_(m.c.role == sa.literal_column("'assistant'"), m.c.source == sa.literal_column("'model'"))


def insights(run: Run, messages: Messages, start: date | None, end: date | None) -> Insights:
    """Every figure of the page from the rows from start through end (UTC days; None: open)."""
    m, totals = messages.rows, messages.days
    source = m if totals is None else totals
    day = source.c.day
    if totals is None:
        counts = (sa.func.count(), sa.func.count() - sa.func.count(day))
    else:
        counts = (_sum(totals.c.messages), _sum(sa.case((day.is_(None), totals.c.messages))))
    span = run(sa.select(sa.func.min(day), sa.func.max(day), *counts))[0]
    dates = None if span[0] is None else (_EPOCH + timedelta(days=span[0]), _EPOCH + timedelta(days=span[1]))
    where = _between(source, start, end)
    per_day = _per_day(run, m, where) if totals is None else _summed_days(run, totals, where)
    dated = per_day[per_day["day"].notna()]
    days = np.asarray(dated["day"].astype("int64"), dtype="datetime64[D]")
    picked = figures._pick_bucket(days) if len(days) else BUCKETS[0]
    calendar, positions = _calendar(days, picked)
    sums = {name: _sums(dated[name], positions, calendar) for name in
            ("conversations", "messages", "up", "down", "tokens")}
    row_where = _between(m, start, end)
    if totals is not None and picked[0] == "day":
        latency = _day_quantiles(run, m, dated, calendar, per_day, row_where, "latency_ms")
        first_token = _day_quantiles(run, m, dated, calendar, per_day, row_where, "first_token_ms")
    else:
        latency = _quantiles(run, m, picked[0], calendar, [*row_where, m.c.status.is_(None)], "latency_ms")
        first_token = _quantiles(run, m, picked[0], calendar, row_where, "first_token_ms")
    rated = sums["up"] + sums["down"]
    return Insights(
        headline=_headline(run, source, where, per_day, latency[2]),
        activity=pd.DataFrame({"conversations": sums["conversations"], "messages": sums["messages"]},
                              index=calendar),
        reply_times=pd.DataFrame({"latency_median_ms": latency[0], "latency_p90_ms": latency[1],
                                  "first_token_median_ms": first_token[0], "total_tokens": sums["tokens"]},
                                 index=calendar),
        feedback=pd.DataFrame({"up": sums["up"], "down": sums["down"],
                               "share_up": sums["up"].div(rated.where(rated > 0))}, index=calendar),
        sources=_sources(per_day),
        top_questions=_top_questions(run, messages, where, totals is not None),
        bucket=picked[0] if len(days) else "day",
        dates=dates,
        messages=span[2],
        undated=span[3],
    )


def _per_day(run: Run, m, where: list) -> pd.DataFrame:
    """One row per UTC day (and one for undated rows) with every count the figures sum."""
    model = _model(m)
    columns = {
        "messages": sa.func.count(),
        "conversations": _count_if(m.c.starts),
        "up": _count_if(m.c.feedback == "up"),
        "down": _count_if(m.c.feedback == "down"),
        "answers": _count_if(m.c.role == "assistant"),
        **{source: _count_if(sa.and_(m.c.role == "assistant", m.c.source == source)) for source in SOURCES},
        "scripted_rows": _count_if(m.c.source == "scripted"),
        "tokens": sa.func.coalesce(sa.func.sum(sa.case((model, m.c.total_tokens))), 0),
    }
    query = sa.select(m.c.day, *(value.label(name) for name, value in columns.items()))
    rows = run(query.where(*where).group_by(m.c.day))
    frame = pd.DataFrame([tuple(row) for row in rows], columns=["day", *columns], dtype=object)
    return frame.astype({name: "int64" for name in columns})


def _sum(value) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(value), 0)


def _summed_days(run: Run, totals, where: list) -> pd.DataFrame:
    """_per_day from the store's day totals: one row per conversation and day, not per message."""
    query = sa.select(totals.c.day, *(_sum(totals.c[name]).label(name) for name in DAY_TOTALS))
    rows = run(query.where(*where).group_by(totals.c.day))
    frame = pd.DataFrame([tuple(row) for row in rows], columns=["day", *DAY_TOTALS], dtype=object)
    return frame.astype({name: "int64" for name in DAY_TOTALS})


_COUNTED = {"latency_ms": "latencies", "first_token_ms": "first_tokens"}


def _day_quantiles(run: Run, m, dated: pd.DataFrame, calendar: pd.DatetimeIndex, per_day: pd.DataFrame,
                   where: list, column: str):
    """_quantiles for day buckets (calendar: one row per day), from each day's count of values: per day, only
    the two or three values around the median and the 90th percentile are read, in order (the store's
    index on day and value)."""
    value = m.c[column]
    answers = [_model(m), value.is_not(None), *([m.c.status.is_(None)] if column == "latency_ms" else [])]

    skip, take = sa.bindparam("skip", type_=sa.Integer), sa.bindparam("take", type_=sa.Integer)
    one_day = sa.select(value).where(*answers, *where, m.c.day == sa.bindparam("day", type_=sa.Integer))
    one_day = one_day.order_by(value).offset(skip).limit(take)  # one query, run for each day
    every_day = sa.select(value).where(*answers, *where).order_by(value).offset(skip).limit(take)

    def around(query: sa.Select, first: int, count: int, **values: int) -> dict[int, float]:
        found = run(query, {"skip": first, "take": count, **values})
        return {first + n: float(row[0]) for n, row in enumerate(found)}

    medians = pd.Series(math.nan, index=calendar)
    p90 = pd.Series(math.nan, index=calendar)
    first_day = int(dated["day"].min()) if len(dated) else 0
    for day, size in zip(dated["day"], dated[_COUNTED[column]], strict=True):
        if size:
            day, size = int(day), int(size)
            medians.iloc[day - first_day] = _median(around(one_day, (size - 1) // 2, 2, day=day), size)
            if column == "latency_ms":  # the chart has no 90th percentile of the first token
                ninth = (size - 1) * 9 // 10
                values = around(one_day, max(ninth - 1, 0), 3, day=day)
                p90.iloc[day - first_day] = _quantile(values, size, _P90)
    total = int(per_day[_COUNTED[column]].sum())
    median_all = _median(around(every_day, (total - 1) // 2, 2), total) if total else None
    return medians, p90, median_all


def _calendar(days: np.ndarray, picked: tuple[str, str, int]) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Every bucket from the first to the last day with a message, and each day's place in it."""
    name, unit, step = picked
    if not len(days):
        return pd.DatetimeIndex([], dtype="datetime64[us]", name="day"), np.zeros(0, dtype=np.int64)
    numbers = figures._bucket_numbers(days, unit, step)
    every = np.arange(numbers.min(), numbers.max() + 1)
    return pd.DatetimeIndex(figures._bucket_starts(every, unit, step), name=name), numbers - numbers.min()


def _sums(values: pd.Series, positions: np.ndarray, calendar: pd.DatetimeIndex) -> pd.Series:
    totals = np.zeros(len(calendar), dtype=np.int64)
    np.add.at(totals, positions, values.to_numpy(dtype=np.int64))
    return pd.Series(totals, index=calendar)


def _quantiles(run: Run, m, bucket: str, calendar: pd.DatetimeIndex, where: list, column: str):
    """Per bucket of the model's answers: the median and 90th percentile of a column, exactly as pandas
    interpolates them, from the few ranked values each needs (window functions in the engine); and the
    median over all the answers, dated or not."""
    value = m.c[column]
    number = _bucket_expression(m, bucket).label("bucket")
    ranked = sa.select(
        number, value.label("value"),
        sa.func.row_number().over(partition_by=number, order_by=value).label("rank"),
        sa.func.count().over(partition_by=number).label("size"),
        sa.func.row_number().over(order_by=value).label("overall_rank"),
        sa.func.count().over().label("overall_size"),
    ).where(_model(m), value.is_not(None), *where).subquery()
    r = ranked.c
    lower = (r.size - 1) // 2 + 1
    ninth = ((r.size - 1) * 9) // 10 + 1  # pandas' float position can be one less: fetch around it
    overall = (r.overall_size - 1) // 2 + 1
    keep = sa.or_(r.rank.between(lower, r.size // 2 + 1), r.rank.between(ninth - 1, ninth + 1),
                  r.overall_rank.between(overall, r.overall_size // 2 + 1))
    rows = run(sa.select(r.bucket, r.rank, r.size, r.value, r.overall_rank, r.overall_size).where(keep))
    per_bucket: dict[int, dict[int, float]] = {}
    sizes: dict[int, int] = {}
    middle: dict[int, float] = {}
    for number_, rank, size, found, overall_rank, overall_size in rows:
        if number_ is not None:
            per_bucket.setdefault(number_, {})[rank - 1] = float(found)
            sizes[number_] = size
        middle[overall_rank - 1] = float(found)
        total = overall_size
    medians, p90 = _per_bucket(per_bucket, sizes, calendar, bucket)
    median_all = _median(middle, total) if middle else None
    return medians, p90, median_all


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


def _per_bucket(values, sizes, calendar: pd.DatetimeIndex, bucket: str) -> tuple[pd.Series, pd.Series]:
    medians = pd.Series(math.nan, index=calendar)
    p90 = pd.Series(math.nan, index=calendar)
    if len(calendar):
        _, unit, step = next(b for b in BUCKETS if b[0] == bucket)
        first = figures._bucket_numbers(np.array([calendar[0].to_datetime64()], dtype="datetime64[D]"),
                                        unit, step)[0]
        for number, ranked in values.items():
            place = number - first
            medians.iloc[place] = _median(ranked, sizes[number])
            p90.iloc[place] = _quantile(ranked, sizes[number], _P90)
    return medians, p90


def _headline(run: Run, m, where: list, per_day: pd.DataFrame, median: float | None) -> dict:
    """history.insights.headline; conversations with any message are counted by the engine."""
    active = run(sa.select(sa.func.count(sa.distinct(m.c.conversation))).where(*where))[0][0]
    up, down = int(per_day["up"].sum()), int(per_day["down"].sum())
    answers = int(per_day["answers"].sum())
    return {
        "conversations": int(per_day["conversations"].sum()),
        "active_conversations": int(active),
        "messages": int(per_day["messages"].sum()),
        "median_latency_ms": median,
        "thumbs_up_share": figures._share(up, up + down),
        "scripted_share": figures._share(int(per_day["scripted_rows"].sum()), answers),
    }


def _sources(per_day: pd.DataFrame) -> pd.DataFrame:
    """history.insights.answer_sources from the per-day counts."""
    answers = pd.Series([int(per_day[name].sum()) for name in SOURCES], dtype="int64",
                        index=pd.Index(list(SOURCES), dtype="str", name="source"))
    total = int(answers.sum())
    return pd.DataFrame({"answers": answers, "share": answers / total if total else math.nan})


def _top_questions(run: Run, messages: Messages, where: list, from_days: bool, n: int = 10) -> pd.DataFrame:
    """history.insights.top_first_questions: spellings grouped in the engine; only the keys that can be
    among the first n (ties at the n-th included) come back, to be ordered as pandas orders them."""
    table = messages.days if from_days else messages.rows
    question, key = table.c.question, table.c.question_key
    at = table.c.question_at_us if from_days else table.c.at_us
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
    return figures.top_spellings(spellings, n)
