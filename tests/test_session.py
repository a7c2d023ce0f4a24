"""The browser session's state: one typed object that every page reads and sets the same way."""

from __future__ import annotations

from app_pages.session import MESSAGE_WINDOW, Notice, Session


def test_take_hands_over_a_one_shot_value_once():
    current = Session(carry_over="a long message", notice=Notice("error", "Disk full"),
                      history_rows={"k": ["a"]})
    assert current.take("carry_over") == "a long message" and current.carry_over is None
    assert current.take("notice") == Notice("error", "Disk full") and current.take("notice") is None
    assert current.take("history_rows") == {"k": ["a"]} and current.history_rows == {}


def test_update_sets_what_a_button_asks_for():
    current = Session()
    current.update(pending="regenerate", starter="What are your opening hours?")
    assert current.pending == "regenerate" and current.starter == "What are your opening hours?"
    assert current.window == MESSAGE_WINDOW and current.conversation is None
