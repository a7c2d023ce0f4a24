"""store.insights() on every store equals the pandas figures over store.insight_rows(), for any dates."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from history.insight_queries import Insights
from history.insights import DERIVED, between
from history.models import Conversation, make_message
from history.stores import sql_derived, sql_schema
from history.stores.json_store import JsonHistoryStore
from history.stores.legacy import LEGACY_FILE_NAME, LEGACY_ID
from history.stores.sql_store import SqlHistoryStore
from tests import insights_reference as pandas_figures
from tests.test_insights import FAR_APART, HISTORY, reply, save, tokens, user
from tests.test_json_store import FLASK_MESSAGES

DAY1, DAY2, DAY3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
RANGES = [(None, None), (DAY1, DAY1), (DAY3, DAY3), (DAY2, None), (None, DAY2), (DAY1, DAY3),
          (date(2030, 1, 1), None), (date(1600, 1, 1), date(1700, 1, 1))]
FIGURES = {
    "activity": pandas_figures.daily_activity,
    "reply_times": pandas_figures.reply_times,
    "feedback": pandas_figures.feedback_by_day,
    "sources": pandas_figures.answer_sources,
    "top_questions": pandas_figures.top_first_questions,
}


@pytest.fixture
def store(any_backend):
    return any_backend.store()


def assert_same_figures(store, start: date | None, end: date | None) -> Insights:
    """Every figure of store.insights() equal to today's pandas functions over the rows, dtypes too."""
    rows = store.insight_rows()
    frame = between(rows, start, end)
    found = store.insights(start, end)
    assert found.headline == pandas_figures.headline(frame)
    assert found.bucket == pandas_figures.bucket_size(frame)
    for name, figure in FIGURES.items():
        pd.testing.assert_frame_equal(getattr(found, name), figure(frame), obj=name)
    times = rows["created_at"].dropna()
    assert found.dates == (None if times.empty else (times.min().date(), times.max().date()))
    assert found.messages == len(rows) and found.undated == rows["created_at"].isna().sum()
    return found


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_the_known_history_in_any_date_range(store, start, end):
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    assert_same_figures(store, start, end)


def test_the_known_figures(store):
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    found = store.insights()
    assert found.headline["median_latency_ms"] == 2500.0 and found.headline["messages"] == 14
    assert found.reply_times["latency_p90_ms"].dropna().tolist() == [2800.0, 3800.0]
    assert found.top_questions.to_dict("list") == {
        "question": ["what is python", "¿Cómo cambio mi contraseña?"], "conversations": [3, 1]}
    assert found.dates == (DAY1, DAY3)


def test_an_empty_history(store):
    found = assert_same_figures(store, None, None)
    assert found.dates is None and found.messages == 0 and found.activity.empty
    assert found.headline["median_latency_ms"] is None
    save(store, "gone", HISTORY["a"])
    store.delete("gone")
    assert store.insights().messages == 0


def test_odd_times_partial_replies_feedback_and_spellings(store):
    odd = [
        user("  What   is  PYTHON?! ", "2026-03-01T10:00:00"),  # no zone: UTC
        reply("yesterday", 900, 90, tokens(1, 2)),  # unreadable: on no day
        user("Late", "2026-03-02T23:30:00-05:00"),  # day 3 in UTC
        reply("2026-03-03T04:31:00.123456+00:00", 700, None, status="interrupted", feedback="down"),
        reply("12345", 100, 10, feedback="up"),
        make_message("assistant", "x", created_at="2026-03-01T10:00:01Z", source="scripted", feedback="up"),
    ]
    more = {"odd": odd, "with-nul": [user("what is\x00 python", "2026-03-02T09:00:00Z")],
            "undated": [user("what is python", "not a time")], "blank": [user(" ?! ", "2026-03-02")]}
    for cid, messages in {**HISTORY, **more}.items():
        store.create(Conversation(id=cid, model="m", created_at="2026-03-01T00:00:00Z", messages=messages))
    store.update_message("a", 1, HISTORY["a"][1]["created_at"], feedback="down")
    store.append("b", reply("2026-03-02T00:01:00Z", 5000, 2500, status="stopped"))
    for start, end in RANGES:
        assert_same_figures(store, start, end)


def test_centuries_apart(store):
    for conversation in FAR_APART:
        store.create(conversation)
    save(store, "now", HISTORY["c"])
    assert assert_same_figures(store, None, None).bucket == "decade"
    assert assert_same_figures(store, date(2020, 1, 1), date(2030, 1, 1)).bucket == "day"


@pytest.mark.parametrize("seed", [1, 2])
def test_many_random_conversations_and_ranges(store, seed):
    """Percentiles over many values, ties in the top questions, weeks and months as buckets."""
    pick = random.Random(seed)
    first = date(2025, 1, 1)
    for n in range(60):
        day = first + timedelta(days=pick.randrange(0, 200 if seed == 1 else 900))
        at = f"{day.isoformat()}T{pick.randrange(24):02d}:{pick.randrange(60):02d}:00Z"
        messages = [user(pick.choice(["Hi", "hi!", "Help?", "help", "Price", "a", "b", "c", "d"]), at)]
        for _ in range(pick.randrange(0, 5)):
            status = pick.choice([None, None, None, "stopped"])
            messages.append(reply(at, pick.randrange(1, 50) * 100, pick.choice([None, 10, 20, 35]),
                                  tokens(pick.randrange(9), 1), status=status,
                                  feedback=pick.choice([None, "up", "down"])))
        store.create(Conversation(id=f"r{n}", model="m", created_at=at, messages=messages))
    for _ in range(6):
        start = first + timedelta(days=pick.randrange(-10, 400))
        assert_same_figures(store, start, start + timedelta(days=pick.randrange(0, 500)))
    assert_same_figures(store, None, None)


def test_the_figures_follow_every_kind_of_change(any_backend):
    """The day totals of each conversation change with it, in the same write, whatever the change."""
    store, other = any_backend.store(), any_backend.store("users/other")
    save(other, "a", HISTORY["a"])  # another owner's conversations never count
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    changes = [
        lambda: store.append("a", reply("2026-03-02T09:00:00Z", 700, 70, tokens(1, 1)), user("Q", "no time")),
        lambda: store.update_message("a", 1, HISTORY["a"][1]["created_at"], feedback="down"),
        lambda: store.replace_tail("b", 0, user("Price?", "2026-03-03T10:00:00Z"), expected_count=2),
        lambda: store.update("c", title="renamed"),
        lambda: store.delete("a"),
        lambda: store.restore("a"),
        lambda: store.delete("d"),
        lambda: store.delete_forever("d"),
        lambda: store.delete("c"),
        lambda: store.purge_deleted(datetime.now(UTC) + timedelta(seconds=1)),
    ]
    for change in changes:
        change()
        for start, end in RANGES[:6]:
            assert_same_figures(store, start, end)
    assert store.insights().headline["active_conversations"] == 2
    assert other.insights().headline["messages"] == len(HISTORY["a"])


def test_a_conversation_removed_for_good_leaves_no_derived_rows(sql_backend):
    store = sql_backend.store()
    for cid in ("kept", "gone", "purged"):
        save(store, cid, HISTORY["a"])
    store.delete("gone")
    store.delete_forever("gone")
    store.delete("purged")
    store.purge_deleted(datetime.now(UTC) + timedelta(seconds=1))
    counts = {"chatbot_search": "count(*)", "chatbot_insight_rows": "count(DISTINCT conversation_serial)",
              "chatbot_insight_days": "count(DISTINCT conversation_serial)"}
    with sql_schema.engine_for(sql_backend.target).connect() as connection:
        for table, count in counts.items():
            assert connection.scalar(sa.text(f"SELECT {count} FROM {table}")) == 1, table


def as_version_3(target: str) -> None:
    """The database's Insights tables as version 3 made them: no day totals, no live owner, no indexes."""
    with sql_schema.engine_for(target).begin() as connection:
        connection.execute(sa.text("DROP TABLE chatbot_insight_days"))
        for index in sql_derived.insight_rows.indexes:
            connection.execute(sa.text(f"DROP INDEX {index.name}"))
        connection.execute(sa.text("ALTER TABLE chatbot_insight_rows DROP COLUMN live_owner"))
        connection.execute(sa.text("UPDATE chatbot_schema_meta SET value = '3'"))
    sql_schema._upgraded.discard(sql_schema.engine_for(target))  # as a newly started server


def test_a_version_3_database_gets_the_day_totals_of_what_it_holds(sql_backend):
    target = sql_backend.target
    store, other = SqlHistoryStore(target), SqlHistoryStore(target, "users/other")
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    save(store, "trashed", HISTORY["a"])
    store.delete("trashed")
    save(other, "theirs", HISTORY["c"])
    as_version_3(target)
    assert sql_schema.upgrade(target) == 3
    store = SqlHistoryStore(target)
    for start, end in RANGES:
        assert_same_figures(store, start, end)
    assert store.insights().headline["messages"] == 14  # neither the trash nor another owner's
    assert SqlHistoryStore(target, "users/other").insights().headline["messages"] == len(HISTORY["c"])
    store.restore("trashed")
    assert assert_same_figures(store, None, None).headline["messages"] == 14 + len(HISTORY["a"])
    with store.engine.connect() as connection:
        assert sql_schema.schema_version(connection) == 4


def test_a_version_2_database_gets_the_days_of_its_insight_rows(sql_backend):
    target = sql_backend.target
    store = SqlHistoryStore(target)
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    as_version_3(target)
    with sql_schema.engine_for(target).begin() as connection:  # the insight rows as version 2 made them
        for name in DERIVED:
            connection.execute(sa.text(f"ALTER TABLE chatbot_insight_rows DROP COLUMN {name}"))
        connection.execute(sa.text("UPDATE chatbot_schema_meta SET value = '2'"))
    assert sql_schema.upgrade(target) == 2
    assert assert_same_figures(SqlHistoryStore(target), DAY1, DAY3).headline["messages"] == 14


def test_the_flask_history_counts_until_its_copy_hides_it(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    store.root.mkdir()
    (store.root / LEGACY_FILE_NAME).write_text(json.dumps(FLASK_MESSAGES), encoding="utf-8")
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    assert assert_same_figures(store, None, None).headline["active_conversations"] == 5
    store.append(LEGACY_ID, user("Und jetzt?", "2026-03-02T08:00:00Z"))  # its copy hides the read-only one
    for start, end in RANGES:
        assert_same_figures(store, start, end)
    assert store.insights().headline["active_conversations"] == 5
