"""The history database restarting, stopped or stopping mid-reply, as a user of the app sees it
(AppTest on the real test PostgreSQL server, which the tests restart and stop)."""

from __future__ import annotations

import threading
import time

import pytest

from history.stores.backend import open_store
from tests.apptest import button, chat, send
from tests.openai_server import Script
from tests.test_app_database import visit


@pytest.fixture
def database(make_backend):
    return make_backend("postgresql").target


def contents(url: str) -> list[str]:
    store = open_store(url)
    [summary] = store.list()
    return [m["content"] for m in store.get(summary.id).messages]


def errors(at) -> str:
    return " ".join(e.value for e in at.error)


def test_a_restart_between_turns_costs_the_user_nothing(database, openai_server, postgres_server):
    at = visit(openai_server, database)
    send(at, "before the restart")
    postgres_server.restart()
    send(at, "after the restart")
    assert not at.exception and not at.error
    assert chat(at)[-1] == ("assistant", "Echo: after the restart")
    assert contents(database)[-2:] == ["after the restart", "Echo: after the restart"]


def test_a_stopped_database_is_explained_and_the_message_waits_in_the_box(
    database, openai_server, postgres_server
):
    at = visit(openai_server, database)
    send(at, "first turn")
    postgres_server.stop()
    started = time.monotonic()
    send(at, "while the database is down")
    assert time.monotonic() - started < 20, "the page waited too long for the database"
    assert not at.exception
    assert "database" in errors(at) and "cannot be reached" in errors(at)
    assert at.chat_input, "the chat box is still there"
    assert at.chat_input[0].value == "while the database is down"
    postgres_server.start()
    send(at, "while the database is down")
    assert chat(at)[-1] == ("assistant", "Echo: while the database is down")


def test_a_database_stopped_mid_reply_keeps_the_reply_on_screen_to_save_again(
    database, openai_server, postgres_server
):
    at = visit(openai_server, database)
    send(at, "first turn")
    openai_server.enqueue(Script("A reply that outlives the database.", first_token_delay=0.5))
    asked = len(openai_server.chat_requests)

    def stop_when_asked() -> None:
        while len(openai_server.chat_requests) == asked:
            time.sleep(0.01)
        postgres_server.stop()

    stopper = threading.Thread(target=stop_when_asked, daemon=True)
    stopper.start()
    send(at, "second turn")
    stopper.join(timeout=30)
    assert not at.exception
    assert chat(at)[-1] == ("assistant", "A reply that outlives the database.")
    assert "not saved yet" in errors(at)
    postgres_server.start()
    button(at, "Save again").click().run()
    assert not at.exception and "not saved yet" not in errors(at)
    assert contents(database)[-2:] == ["second turn", "A reply that outlives the database."]
