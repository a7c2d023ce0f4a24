"""Stop, download and upload in a real browser: what only a browser shows of the chat controls."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.ui import (
    bubble,
    chat_about,
    expect_chat,
    expect_history_rows,
    expect_idle,
    history_titles,
    messages,
    send,
    sidebar_button,
)
from tests.openai_server import Script

pytestmark = pytest.mark.browser

DATA = Path(__file__).parent.parent / "data"
STORY = " ".join(f"w{number:02d}" for number in range(80))
FIFTH_WORD_SHOWN = """() => {
    const reply = document.querySelectorAll('[data-testid="stChatMessage"]')[1];
    return reply && reply.innerText.includes("w05");
}"""


def saved_conversations(history_dir: Path) -> list[dict]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(history_dir.glob("[!.]*.json"))]


def wait_for(condition, seconds: float = 5.0) -> None:
    """Poll a condition on this process's side (the test server), as the page cannot show it."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_stop_keeps_the_partial_reply_marks_it_and_stops_reading_the_model(page, openai_server, history_dir):
    openai_server.enqueue(Script(STORY, chunk_delay=0.1))  # 80 words over ~8 s
    send(page, "Tell me a long story")
    page.wait_for_function(FIFTH_WORD_SHOWN, polling="raf")
    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop reply").click()
    expect_idle(page)
    wait_for(lambda: openai_server.hung_up)
    [(sent, scripted)] = openai_server.hung_up
    assert sent < scripted, "the server kept generating after Stop"
    wait_for(lambda: len(saved_conversations(history_dir)[0]["messages"]) == 2)
    reply = saved_conversations(history_dir)[0]["messages"][-1]
    assert reply["status"] == "stopped" and "w05" in reply["content"] and "w79" not in reply["content"]
    assert STORY.startswith(reply["content"])
    assert reply["content"].startswith(bubble(page, 1).inner_text())  # the word in flight may be saved too
    send(page, "Thanks, that will do")  # the box works again, and the stopped reply is marked
    expect(messages(page).nth(1).get_by_test_id("stCaptionContainer")).to_contain_text("Reply stopped.")
    expect_chat(
        page, "Tell me a long story", reply["content"], "Thanks, that will do", "Echo: Thanks, that will do"
    )


def download(page, name: str):
    """Click a download button and return (suggested file name, bytes)."""
    with page.expect_download() as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button", name=name).click()
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_the_conversation_downloads_as_json_and_markdown_and_everything_as_a_zip(page, history_dir):
    chat_about(page, "Export this chat")
    page.get_by_test_id("stPopoverButton").filter(has_text="Export").click()
    name, data = download(page, "JSON")
    [conversation] = saved_conversations(history_dir)
    assert name.startswith("export-this-chat-") and name.endswith(".json")
    assert json.loads(data) == conversation
    name, data = download(page, "Markdown")
    assert name.endswith(".md")
    text = data.decode("utf-8")
    assert text.startswith("# Export this chat") and "Echo: Export this chat" in text
    page.keyboard.press("Escape")
    sidebar_button(page, "Load History").click()
    expect_history_rows(page, 1)
    name, data = download(page, "Download all (zip)")
    assert name.startswith("chat-history-") and name.endswith(".zip")
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert f"{conversation['id']}.json" in members


def upload(page, path: Path) -> None:
    page.get_by_test_id("stPopoverButton").filter(has_text="Import").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))


def test_uploading_a_chatgpt_export_imports_it_and_says_what_came_in(page, history_dir, tmp_path):
    sidebar_button(page, "Load History").click()
    upload(page, DATA / "chatgpt_conversations.json")
    expect(page.get_by_test_id("stAlert").first).to_contain_text("Imported 2 conversations (8 messages)")
    expect_history_rows(page, 2)
    assert sorted(history_titles(page)) == ["Describe this photo", "Weekend in Lisbon"]
    broken = tmp_path / "conversations.json"
    broken.write_text('{"mapping": ')
    upload(page, broken)
    expect(page.get_by_test_id("stAlert").first).to_contain_text("Nothing was imported")
    expect_history_rows(page, 2)
    assert len(saved_conversations(history_dir)) == 2
