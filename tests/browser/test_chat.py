"""Chatting in a real browser: streaming, reloads, failures, interruptions and untrusted model output."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from history.models import title_from
from tests.browser.ui import bubble, chat_about, expect_chat, expect_idle, expect_title, messages, send
from tests.openai_server import Script

pytestmark = pytest.mark.browser

WORDS = " ".join(f"word{number:02d}" for number in range(20))

# Resolves, on the first animation frame where the reply shows "word03", with the reply's text then.
FIRST_WORDS_SHOWN = """() => {
    const reply = document.querySelectorAll('[data-testid="stChatMessage"]')[1];
    const text = reply ? reply.innerText : "";
    return text.includes("word03") ? text : null;
}"""


def test_a_reply_streams_in_word_by_word(page, openai_server):
    openai_server.enqueue(Script(WORDS, chunk_delay=0.1))  # 20 words over ~2 s
    send(page, "Count for me")
    partial = page.wait_for_function(FIRST_WORDS_SHOWN, polling="raf").json_value()
    assert "word19" not in partial, f"the whole reply appeared at once: {partial!r}"
    expect(bubble(page, 1)).to_have_text(WORDS)
    expect_title(page, "Count for me")
    expect_chat(page, "Count for me", WORDS)


def test_a_reload_brings_the_conversation_back(page):
    chat_about(page, "Remember this")
    page.reload()
    expect_title(page, "Remember this")
    expect_chat(page, "Remember this", "Echo: Remember this")


def test_a_refused_key_says_what_to_do_keeps_the_message_and_retry_works(page, openai_server):
    openai_server.fail_next(401)
    send(page, "Are you there?")
    alert = page.get_by_test_id("stAlert")
    expect(alert).to_contain_text("OPENAI_API_KEY")
    expect_chat(page, "Are you there?")
    page.get_by_role("button", name="Retry").click()
    expect(alert).to_have_count(0)  # the alert goes in the rerun after the reply is saved
    expect_chat(page, "Are you there?", "Echo: Are you there?")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)


def expect_shown_as_text(page, *texts: str) -> None:
    """Markup in messages is displayed literally: no element made from it, no script run."""
    expect_chat(page, *texts)
    expect_idle(page)
    expect(page.locator('img[src="x"]')).to_have_count(0)
    expect(messages(page).locator("script")).to_have_count(0)
    assert page.evaluate("window.__xss") is None, "markup from a message ran as script"


def test_markup_in_messages_is_shown_as_text_and_never_runs(page, openai_server):
    payload = '<script>window.__xss=1</script> and <img src=x onerror="window.__xss=2">'
    question, answer = f"Say {payload}", f"Model says {payload}"
    openai_server.enqueue(answer)
    send(page, question)
    expect_title(page, title_from(question))
    expect_shown_as_text(page, question, answer)  # as streamed, then re-rendered from the saved turn
    page.reload()
    expect_shown_as_text(page, question, answer)  # as restored from history


def test_an_interrupted_reply_is_kept_and_marked(page, openai_server):
    openai_server.enqueue(Script("The answer is forty", drop_after=3))
    send(page, "What is the answer?")
    note = messages(page).nth(1).get_by_test_id("stCaptionContainer")
    expect(note).to_contain_text("interrupted")
    expect_chat(page, "What is the answer?", "The answer is")
    page.reload()
    expect(note).to_contain_text("interrupted")
    expect_chat(page, "What is the answer?", "The answer is")
