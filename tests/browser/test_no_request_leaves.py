"""No request leaves for another site because of content: every surface shows a hostile image as text.

A listener on its own port of 127.0.0.1 records every request it gets. Every text the app shows from a
model, a user, a server, an import or a profile names an image there: the reply (also while it streams),
earlier versions, notes, titles, notices, the Recently deleted list, import notices, a 400 error, the
profile's name, greeting and starters, model names. In Chromium the listener must get nothing, and each
text must still be readable on the page.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from history.models import Conversation
from tests.browser.conftest import READY, save_screenshot, spawn_streamlit
from tests.browser.ui import (
    TIMEOUT_MS,
    expect_history_rows,
    expect_idle,
    follow_script_runs,
    messages,
    pick_row,
    send,
    then_pause,
)
from tests.hostile_text import CAUTIOUS, HOSTILE, with_url
from tests.openai_server import Script

pytestmark = pytest.mark.browser

PIXEL = bytes.fromhex(  # a 1x1 PNG, so a fetched image would load like a real one
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8ff"
    "ff3f0005fe02fea7d6a4c80000000049454e44ae426082"
)


class Listener(ThreadingHTTPServer):
    """An HTTP server that answers every request with a pixel and remembers its path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ListenerHandler)
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.paths)


class ListenerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PIXEL)))
        self.end_headers()
        self.wfile.write(PIXEL)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def image(url: str, name: str) -> str:
    return f"![{name}]({url}/{name})"


def conversation(title: str, messages: list[dict], updated_at: str, **fields) -> dict:
    return Conversation(title=title, messages=messages, created_at=updated_at, updated_at=updated_at,
                        **fields).to_dict()


def write_profile(path: Path, url: str) -> dict:
    texts = {
        "name": f"Bot {image(url, 'profile-name')}",
        "greeting": f"Hello {image(url, 'greeting')}",
        "starter": f"Try {image(url, 'starter')}",
    }
    path.write_text(
        f"name = {json.dumps(texts['name'])}\ngreeting = {json.dumps(texts['greeting'])}\n"
        f"starters = [{json.dumps(texts['starter'])}]\n",
        encoding="utf-8",
    )
    return texts


def write_history(folder: Path, url: str) -> dict:
    """The conversation a visit opens (every hostile case as a reply), and one in the trash."""
    stamp = "2030-01-01T00:00:00Z"
    replies = [
        {"role": "assistant", "content": with_url(text, url), "created_at": stamp, "model": "test-model"}
        for _, text, _ in HOSTILE + CAUTIOUS
    ]
    earlier = {"role": "assistant", "content": image(url, "alternative"), "created_at": stamp}
    replies[0]["alternatives"] = [earlier]
    replies[1].update(finish_reason="interrupted", error="odd", error_detail=f"cut {image(url, 'note')}")
    opened = conversation(
        f"Title {image(url, 'title')}",
        [{"role": "user", "content": f"Show {image(url, 'user')}", "created_at": stamp}, *replies],
        stamp, model=f"m`{image(url, 'model-name')}`",
    )
    trashed = conversation(f"Gone {image(url, 'deleted-title')}", [
        {"role": "user", "content": "hi", "created_at": stamp}], "2029-01-01T00:00:00Z")
    folder.mkdir(parents=True)
    (folder / ".trash").mkdir()
    (folder / f"{opened['id']}.json").write_text(json.dumps(opened), encoding="utf-8")
    (folder / ".trash" / f"{trashed['id']}.json").write_text(json.dumps(trashed), encoding="utf-8")
    return {"title": opened["title"], "deleted": trashed["title"]}


def shared_export(path: Path, url: str) -> dict:
    """A zip someone shared: a conversation to open, one with no messages, and a member that is not JSON."""
    stamp = "2099-01-01T00:00:00Z"
    shared = conversation(f"Shared {image(url, 'shared-title')}", [
        {"role": "user", "content": "hello", "created_at": stamp},
        {"role": "assistant", "content": f"Shared {image(url, 'shared-reply')}", "created_at": stamp},
    ], stamp)
    empty = conversation(f"Empty {image(url, 'import-title')}", [], stamp)
    member = f"{image(url, 'member-name')}.txt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{shared['id']}.json", json.dumps(shared))
        archive.writestr(f"{empty['id']}.json", json.dumps(empty))
        archive.writestr(member, "not json")
    return {"empty": empty["title"], "member": member}


@pytest.fixture
def hostile_app(openai_server, listener, tmp_path):
    """The app with a hostile profile and history, and a model server listing a hostile model name."""
    texts = write_profile(tmp_path / "profile.toml", listener.url)
    texts.update(write_history(tmp_path / "history", listener.url))
    openai_server.models = ["test-model", f"evil {image(listener.url, 'model-list')}"]
    app = spawn_streamlit(tmp_path, openai_server.base_url, CHATBOT_PROFILE=str(tmp_path / "profile.toml"))
    assert app.wait_healthy(), app.output()
    yield app, texts
    app.stop()


def test_no_surface_fetches_an_image_named_by_content(browser, hostile_app, openai_server, listener, tmp_path,
                                                      request):
    app, texts = hostile_app
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    follow_script_runs(page)
    fetched: list[str] = []
    page.on("request", lambda sent: fetched.append(sent.url) if sent.url.startswith(listener.url) else None)

    def nothing_fetched() -> None:
        """Once the page settles: the browser asked the listener for nothing, and the listener saw nothing."""
        expect_idle(page)
        page.wait_for_timeout(300)  # an image request the last render started has time to arrive
        assert (fetched, listener.seen()) == ([], []), f"content made the browser fetch {fetched}"

    try:
        visit_every_surface(page, app.url, texts, openai_server, listener.url, tmp_path, nothing_fetched)
    except BaseException:
        save_screenshot(page, request.node)
        raise
    finally:
        context.close()


def link(place, url: str, name: str):
    """The link an image became: what the user sees of it, pointing where the image pointed."""
    return place.locator(f'a[href="{url}/{name}"]')


def visit_every_surface(page: Page, app_url: str, texts: dict, openai_server, url: str, tmp_path: Path,
                        nothing_fetched) -> None:
    main, sidebar = page.get_by_role("main"), page.get_by_test_id("stSidebar")
    page.goto(app_url)
    expect(page.locator(READY)).to_be_editable()
    nothing_fetched()
    # The opened conversation: its title, every hostile reply, an earlier version, a note, the model name.
    expect(main.get_by_role("heading", level=3)).to_have_text(texts["title"])
    expect(sidebar.get_by_test_id("stCaptionContainer").first).to_have_text(texts["title"])
    expect(sidebar.get_by_test_id("stHeading")).to_have_text(texts["name"])
    expect(messages(page)).to_have_count(len(HOSTILE) + len(CAUTIOUS) + 1)
    expect(link(messages(page).first, url, "user")).to_have_text("user")
    expect(link(messages(page).nth(1), url, "inline?d=SECRET")).to_have_text("x")
    expect(messages(page).nth(2).get_by_test_id("stCaptionContainer")).to_contain_text(
        f"Reply interrupted: cut {image(url, 'note')}")
    expect(sidebar).to_contain_text(f"m`{image(url, 'model-name')}`")
    page.get_by_text("Earlier versions (1)").click()
    expect(link(messages(page).nth(1), url, "alternative")).to_be_visible()
    nothing_fetched()
    # The model list (the server names the models), then a reply streamed in small pieces, then a 400.
    sidebar.get_by_text("Conversation settings").click()
    expect_idle(page)  # a run ending under the open list would close it
    sidebar.get_by_role("combobox", name="Model").click()
    expect(page.get_by_role("option").last).to_have_text(f"evil {image(url, 'model-list')}")
    page.keyboard.press("Escape")
    openai_server.enqueue(Script(f"Streaming {image(url, 'streamed?d=SECRET')} and more", split_every=3,
                                 chunk_delay=0.02))
    send(page, "Stream something")
    expect(link(messages(page).last, url, "streamed?d=SECRET")).to_be_visible()
    expect(messages(page).last).to_contain_text("and more")
    expect_idle(page)
    error = f"Bad request {image(url, 'error-400')}"
    openai_server.fail_next(400, message=error)
    send(page, "Fail please")
    expect(main.get_by_test_id("stAlert")).to_contain_text(error)
    expect_idle(page)  # the failed turn's rerun has ended, so the next click is not lost in it
    nothing_fetched()
    # Delete: the notice names the title; the chat starts fresh with the greeting and the starters.
    main.get_by_test_id("stPopoverButton").filter(has_text="Delete").click()
    then_pause(page, page.get_by_role("button", name="Delete conversation").click)
    # One notice: the 400 error has gone with the conversation.
    expect(main.get_by_test_id("stAlert")).to_contain_text([f"Deleted “{texts['title']}”"])
    expect(link(messages(page).first, url, "greeting")).to_be_visible()
    expect(main.get_by_role("button", name=texts["starter"])).to_be_visible()
    nothing_fetched()
    # History: Recently deleted, then a shared export whose import notice names titles and a member.
    sidebar.get_by_role("button", name="Load History").click()
    page.get_by_text("Recently deleted (2)").click()
    expect(main).to_contain_text(texts["deleted"])
    expect(main).to_contain_text(texts["title"])
    shared = shared_export(tmp_path / "shared.zip", url)
    page.get_by_test_id("stPopoverButton").filter(has_text="Import").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(tmp_path / "shared.zip"))
    notice = main.get_by_test_id("stAlert").first
    expect(notice).to_contain_text(shared["empty"])
    expect(notice).to_contain_text(shared["member"])
    nothing_fetched()
    # The shared conversation, opened from the table.
    expect_history_rows(page, 1)
    pick_row(page, 0)
    expect(link(messages(page).last, url, "shared-reply")).to_be_visible()
    nothing_fetched()
