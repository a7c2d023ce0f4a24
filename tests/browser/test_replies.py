"""A reply survives every click, a second tab, a closed tab and a server restart, in a real browser."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import READY, StreamlitApp, spawn_streamlit
from tests.browser.ui import bubble, chat_about, messages, send, sidebar_button
from tests.openai_server import Script

pytestmark = pytest.mark.browser

STORY = " ".join(f"w{number:02d}" for number in range(60))
QUESTION = "Tell me a long story"
LONG_WAIT_MS = 40_000  # a restarted server, then a checkpoint going stale


def saved_conversations(history_dir: Path) -> list[dict]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(history_dir.glob("[!.]*.json"))]


def story_conversation(history_dir: Path) -> list[dict]:
    """The messages of the conversation that asked for the story."""
    for conversation in saved_conversations(history_dir):
        if any(m["content"] == QUESTION for m in conversation["messages"]):
            return conversation["messages"]
    return []


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def shows(page, index: int, word: str) -> None:
    expect(bubble(page, index)).to_contain_text(word)


def expect_whole_story_saved_once(history_dir: Path) -> dict:
    wait_for(lambda: (story_conversation(history_dir) or [{}])[-1].get("content") == STORY)
    replies = [m for m in story_conversation(history_dir) if m["role"] == "assistant"]
    story = [m for m in replies if STORY.startswith(m["content"]) and m["content"].startswith("w00")]
    assert len(story) == 1, "the story was saved more than once"
    assert story[0]["finish_reason"] == "stop" and "status" not in story[0]
    return story[0]


def click_thumbs(page) -> None:
    messages(page).nth(1).get_by_test_id("stFeedbackButton").first.click()


def click_start_fresh(page) -> None:
    sidebar_button(page, "Start Fresh").click()


def click_history_link(page) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="History").click()


@pytest.mark.parametrize("click", [click_thumbs, click_start_fresh, click_history_link],
                         ids=["thumbs", "start-fresh", "history-link"])
def test_a_click_while_a_reply_streams_never_ends_it(page, openai_server, history_dir, streamlit_app, click):
    chat_about(page, "hello")
    openai_server.enqueue(Script(STORY, chunk_delay=0.06))  # ~3.6 s
    send(page, QUESTION)
    shows(page, 3, "w05")
    click(page)
    expect_whole_story_saved_once(history_dir)
    assert not openai_server.hung_up, "the click closed the model's stream"
    if click is click_thumbs:
        wait_for(lambda: story_conversation(history_dir)[1].get("feedback") in ("up", "down"))
        shows(page, 3, "w59")  # this tab followed the reply to its end
    page.goto(streamlit_app.url)  # coming back: the latest conversation, the story in it, whole
    expect(page.locator(READY)).to_be_editable()
    expect(bubble(page, 3)).to_have_text(STORY)
    expect(messages(page)).to_have_count(4)
    expect(messages(page).nth(3)).not_to_contain_text("Reply stopped")


def test_a_second_tab_and_a_reopened_tab_show_the_reply_still_growing(
    page, browser, openai_server, history_dir, streamlit_app
):
    openai_server.enqueue(Script(STORY, chunk_delay=0.08))  # ~5 s
    send(page, QUESTION)
    shows(page, 1, "w03")
    second = browser.new_context().new_page()
    second.goto(streamlit_app.url)
    shows(second, 1, "w10")  # the other tab attached to the reply in flight and follows it
    page.context.close()  # the first tab goes away mid-reply
    shows(second, 1, "w30")
    reopened = browser.new_context().new_page()
    reopened.goto(streamlit_app.url)
    shows(reopened, 1, "w40")
    expect(bubble(reopened, 1)).to_have_text(STORY, timeout=LONG_WAIT_MS)
    expect(bubble(second, 1)).to_have_text(STORY)
    expect_whole_story_saved_once(history_dir)
    for tab in (second, reopened):
        tab.context.close()


def test_stop_is_the_only_thing_that_ends_a_reply(page, openai_server, history_dir):
    openai_server.enqueue(Script(STORY, chunk_delay=0.1))
    send(page, QUESTION)
    shows(page, 1, "w05")
    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop reply").click()
    wait_for(lambda: openai_server.hung_up)
    wait_for(lambda: (story_conversation(history_dir) or [{}])[-1].get("status") == "stopped")
    reply = story_conversation(history_dir)[-1]
    assert STORY.startswith(reply["content"]) and "w59" not in reply["content"]
    expect(messages(page).nth(1)).to_contain_text("Reply stopped")
    expect(bubble(page, 1)).to_have_text(reply["content"])


def test_a_server_restart_mid_reply_leaves_the_partial_reply_marked_interrupted(
    page, browser, openai_server, streamlit_app, history_dir
):
    openai_server.enqueue(Script(STORY, chunk_delay=0.1))  # ~6 s
    send(page, QUESTION)
    shows(page, 1, "w10")
    wait_for(lambda: len(story_conversation(history_dir)) == 2)  # a checkpoint is on disk
    streamlit_app.process.send_signal(signal.SIGKILL)
    streamlit_app.process.wait(timeout=10)
    partial = story_conversation(history_dir)[-1]
    assert partial["status"] == "streaming" and STORY.startswith(partial["content"])
    restarted: StreamlitApp = spawn_streamlit(history_dir.parent, openai_server.base_url)
    try:
        assert restarted.wait_healthy(), restarted.output()
        tab = browser.new_context().new_page()
        tab.goto(restarted.url)
        expect(messages(tab).nth(1)).to_contain_text("Reply interrupted", timeout=LONG_WAIT_MS)
        expect(bubble(tab, 1)).to_have_text(partial["content"])
        reply = story_conversation(history_dir)[-1]
        assert reply["status"] == "interrupted" and reply["content"] == partial["content"]
        tab.context.close()
    finally:
        restarted.stop()
