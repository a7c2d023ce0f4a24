"""New Session, Load History and Start Fresh as a user clicks through them in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chatbot.profile import load_profile
from tests.browser.ui import (
    chat_about,
    chat_input,
    dialog,
    expect_chat,
    expect_history_rows,
    expect_idle,
    expect_title,
    history_table,
    history_titles,
    pick_row,
    sidebar_button,
    then_pause,
)

pytestmark = pytest.mark.browser
GREETING = load_profile().greeting

NEW = "New conversation"


def open_new_session(page):
    """Click New Session and return its dialog once it is up."""
    sidebar_button(page, "New Session").click()
    expect(dialog(page)).to_be_visible()
    expect(dialog(page)).to_contain_text("New Session")
    return dialog(page)


def test_new_session_offers_load_history_and_start_fresh(page):
    chat_about(page, "first conversation")
    choices = open_new_session(page)
    expect(choices.get_by_role("button", name="Load History")).to_be_visible()
    choices.get_by_role("button", name="Start Fresh").click()
    expect(dialog(page)).to_have_count(0)
    expect_title(page, NEW)
    expect_chat(page, GREETING)  # an empty chat shows only the bot's greeting
    open_new_session(page).get_by_role("button", name="Load History").click()
    expect(dialog(page)).to_have_count(0)
    expect_history_rows(page, 1)
    assert history_titles(page) == ["first conversation"]


def test_a_dismissed_dialog_stays_closed(page):
    open_new_session(page)
    then_pause(page, lambda: page.keyboard.press("Escape"))
    expect(dialog(page)).to_have_count(0)
    chat_about(page, "still here?")
    expect(dialog(page)).to_have_count(0)
    close = open_new_session(page).get_by_role("button", name="Close")
    then_pause(page, close.click)
    expect(dialog(page)).to_have_count(0)
    sidebar_button(page, "Load History").click()
    expect_history_rows(page, 1)
    expect_idle(page)
    expect(dialog(page)).to_have_count(0)


def test_load_history_lists_conversations_and_opens_the_picked_one(page):
    chat_about(page, "older chat")
    sidebar_button(page, "Start Fresh").click()
    expect_title(page, NEW)
    chat_about(page, "newer chat")
    sidebar_button(page, "Load History").click()
    expect_history_rows(page, 2)
    assert history_titles(page) == ["newer chat", "older chat"]  # newest first
    pick_row(page, 1)
    expect(history_table(page)).to_have_count(0)
    expect_title(page, "older chat")
    expect_chat(page, "older chat", "Echo: older chat")


def test_start_fresh_empties_the_chat_and_keeps_the_old_conversation(page):
    chat_about(page, "keep me")
    sidebar_button(page, "Start Fresh").click()
    expect_title(page, NEW)
    expect_chat(page, GREETING)  # an empty chat shows only the bot's greeting
    expect(chat_input(page)).to_be_editable()
    sidebar_button(page, "Load History").click()
    expect_history_rows(page, 1)
    assert history_titles(page) == ["keep me"]
