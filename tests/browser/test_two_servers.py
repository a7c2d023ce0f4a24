"""Two app servers sharing one PostgreSQL history, as behind a load balancer: nothing is lost."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bench.live_app import LiveApp, open_app, streamlit_app
from history.stores.backend import open_store
from tests.browser.ui import bubble, expect_history_rows, messages, send, sidebar_button
from tests.openai_server import Script

pytestmark = pytest.mark.browser
SESSIONS = 4  # two per server
TURNS = 3


@contextlib.contextmanager
def two_servers(openai_server, database_url: str, folder: Path) -> Iterator[tuple[LiveApp, LiveApp]]:
    """Two `streamlit run` servers on their own ports, both keeping the history in one database."""
    secrets = f'[connections.history]\nurl = "{database_url}"\n'
    with (
        streamlit_app(folder / "one", openai_server.base_url, secrets=secrets) as one,
        streamlit_app(folder / "two", openai_server.base_url, secrets=secrets) as two,
    ):
        yield one, two


def test_four_sessions_on_two_servers_sharing_postgresql_lose_nothing(
    browser, openai_server, postgres_target, tmp_path
):
    with two_servers(openai_server, postgres_target, tmp_path) as (one, two):
        servers = [one, one, two, two]
        pages = [open_app(browser, server.url) for server in servers]
        for turn in range(TURNS):
            for number, page in enumerate(pages):  # all four send before any reply is awaited
                send(page, f"session {number} turn {turn}")
            for number, page in enumerate(pages):
                expect(messages(page)).to_have_count(2 * (turn + 1))
                expect(bubble(page, 2 * turn + 1)).to_have_text(f"Echo: session {number} turn {turn}")

        store = open_store(postgres_target)
        saved = sorted(store.get(summary.id).messages[0]["content"] for summary in store.list())
        assert saved == [f"session {number} turn 0" for number in range(SESSIONS)]
        for summary in store.list():
            number = store.get(summary.id).messages[0]["content"].split()[1]
            expected = [
                text
                for turn in range(TURNS)
                for text in (f"session {number} turn {turn}", f"Echo: session {number} turn {turn}")
            ]
            assert [m["content"] for m in store.get(summary.id).messages] == expected

        for server in (one, two):  # each server lists every session's conversation
            page = open_app(browser, server.url)
            sidebar_button(page, "Load History").click()
            expect_history_rows(page, SESSIONS)
            page.context.close()
        for page in pages:
            page.context.close()


def test_two_servers_writing_one_conversation_at_once_keep_both_turns(
    browser, openai_server, postgres_target, tmp_path
):
    with two_servers(openai_server, postgres_target, tmp_path) as (one, two):
        first = open_app(browser, one.url)
        send(first, "shared start")
        expect(bubble(first, 1)).to_have_text("Echo: shared start")
        second = open_app(browser, two.url)  # a new visit reopens the latest conversation: the same one
        expect(bubble(second, 1)).to_have_text("Echo: shared start")
        send(first, "from server one")
        send(second, "from server two")
        for page in (first, second):
            expect(page.get_by_text("Echo: from server", exact=False).first).to_be_visible()
        store = open_store(postgres_target)
        [summary] = store.list()
        texts = [m["content"] for m in store.get(summary.id).messages]
        assert texts[:2] == ["shared start", "Echo: shared start"]
        assert sorted(texts[2:]) == sorted(
            ["from server one", "Echo: from server one", "from server two", "Echo: from server two"]
        )
        first.context.close()
        second.context.close()


def test_a_reply_streaming_on_one_server_is_seen_growing_from_the_other(
    browser, openai_server, postgres_target, tmp_path
):
    story = " ".join(f"w{number:02d}" for number in range(60))
    with two_servers(openai_server, postgres_target, tmp_path) as (one, two):
        open_app(browser, two.url).context.close()  # a first run imports everything: not within the 6 s
        first = open_app(browser, one.url)
        openai_server.enqueue(Script(story, chunk_delay=0.1))  # ~6 s
        send(first, "Tell me a long story")
        expect(bubble(first, 1)).to_contain_text("w05")
        second = open_app(browser, two.url)  # the same conversation, its reply saved as it grows
        expect(messages(second).nth(1)).to_contain_text("still arriving")
        expect(bubble(second, 1)).to_contain_text("w40", timeout=20_000)  # checkpoints, as they land
        expect(bubble(second, 1)).to_have_text(story, timeout=20_000)
        expect(messages(second).nth(1)).not_to_contain_text("still arriving")
        for page in (first, second):
            page.context.close()
