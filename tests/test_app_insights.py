"""The Insights page (AppTest) over a history with known numbers (the one tests/test_insights.py checks)."""

from __future__ import annotations

from datetime import date

import pytest

from history.stores.json_store import JsonHistoryStore
from tests.apptest import go_to
from tests.test_insights import HISTORY, save


@pytest.fixture
def insights(new_visit, history_dir):
    """The Insights page of a visit to a history of four known conversations."""
    store = JsonHistoryStore(history_dir)
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    at = new_visit()
    go_to(at, "insights")
    return at.run()


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def numbers(at, column: str):
    """The table, under a chart's "Numbers", that has this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def column(table, name: str) -> list:
    """A column's values with missing ones as None, as the page's table shows them empty."""
    return [None if value != value or value is None else value for value in table[name].tolist()]


def test_the_headline_figures_match_the_history(insights):
    assert not insights.exception
    assert insights.subheader[0].value == "Insights"
    assert metrics(insights) == {
        "Conversations": "4",
        "Messages": "14",
        "Median reply time": "2.5 s",
        "Thumbs up": "60%",
        "Scripted": "14%",
    }


def test_each_chart_has_its_numbers(insights):
    activity = numbers(insights, "conversations")
    assert activity["conversations"].tolist() == [2, 0, 2] and activity["messages"].tolist() == [5, 1, 8]
    assert numbers(insights, "answers")["answers"].to_dict() == {"model": 5, "scripted": 1, "fallback": 1}
    feedback = numbers(insights, "share_up")
    assert feedback["up"].tolist() == [1, 0, 2] and feedback["down"].tolist() == [1, 0, 1]
    times = numbers(insights, "latency_median_ms")
    assert column(times, "latency_median_ms") == [2000, None, 3000]
    assert column(times, "latency_p90_ms") == [2800, None, 3800]
    assert column(times, "first_token_median_ms") == [300, None, 300]
    assert column(times, "total_tokens") == [70, 0, 80]
    assert numbers(insights, "question").to_dict("list") == {
        "question": ["what is python", "¿Cómo cambio mi contraseña?"],
        "conversations": [3, 1],
    }
    assert [b.label for b in insights.get("download_button")] == ["Download messages (CSV)"]


def test_the_date_range_narrows_every_figure(insights):
    insights.date_input[0].set_value((date(2026, 3, 3), date(2026, 3, 3))).run()
    assert metrics(insights)["Messages"] == "8" and metrics(insights)["Conversations"] == "2"
    assert numbers(insights, "answers")["answers"].to_dict() == {"model": 3, "scripted": 0, "fallback": 1}


def test_an_empty_history_says_insights_come_with_use(new_visit):
    at = new_visit()
    go_to(at, "insights")
    at.run()
    assert at.info[0].value.startswith("No conversations yet.")


def test_conversations_centuries_apart_draw_a_few_dozen_rows_not_every_day(new_visit, history_dir):
    store = JsonHistoryStore(history_dir)
    save(store, "early", [HISTORY["a"][0] | {"created_at": "1677-09-22T12:00:00.000Z"}])
    save(store, "late", [HISTORY["a"][0] | {"created_at": "2262-04-10T12:00:00.000Z"}])
    at = new_visit()
    go_to(at, "insights")
    at.run()
    assert not at.exception
    assert metrics(at)["Conversations"] == "2"
    activity = numbers(at, "conversations")
    assert len(activity) == 60 and activity["conversations"].sum() == 2  # decades 1670…2260, not 213,000 days
    assert "#### Conversations and messages per decade" in [m.value for m in at.markdown]
    assert any("per decade" in caption.value for caption in at.caption)


def test_messages_without_a_time_are_left_out_as_the_date_range_leaves_them(new_visit, history_dir):
    store = JsonHistoryStore(history_dir)
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    store.append("a", HISTORY["a"][0] | {"created_at": "not a time"})
    at = new_visit()
    go_to(at, "insights")
    at.run()
    assert metrics(at)["Messages"] == "14"  # of 15: the picker starts at the first and ends at the last day
    assert insights_range(at) == (date(2026, 3, 1), date(2026, 3, 3))
    at.date_input[0].set_value((date(2026, 3, 1), date(2026, 3, 2))).run()
    assert metrics(at)["Messages"] == "6"


def insights_range(at) -> tuple:
    return tuple(at.date_input[0].value)
