"""The app on a history database ([connections.history] in the secrets), as a user drives it (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from history.stores.backend import open_store
from tests.apptest import APP, button, chat, send
from tests.test_login import AUTH, alice, bob

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request, make_backend):
    return make_backend(request.param)


def visit(openai_server, url: str, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_BASE_URL"] = openai_server.base_url
    at.secrets["CHATBOT_MAX_RETRIES"] = 0
    at.secrets["connections"] = {"history": {"url": url}}
    if user:
        at.secrets["auth"] = AUTH
        at.user = user
    return at.run()


def test_turns_are_saved_in_the_database_and_a_new_visit_finds_them(
    backend, openai_server, history_dir
):
    at = visit(openai_server, backend.target)
    assert not at.exception
    send(at, "Stored in the database?")
    [summary] = open_store(backend.target).list()
    saved = open_store(backend.target).get(summary.id)
    turn = [("user", "Stored in the database?"), ("assistant", "Echo: Stored in the database?")]
    assert [(m["role"], m["content"]) for m in saved.messages] == turn
    assert not history_dir.exists() or not list(history_dir.glob("[!.]*.json")), "nothing in the folder"
    again = visit(openai_server, backend.target)
    assert chat(again) == turn
    button(again, "Load History").click().run()
    assert again.dataframe[0].value["title"].tolist() == ["Stored in the database?"]


def test_each_signed_in_user_sees_only_their_own_conversations(backend, openai_server):
    send(visit(openai_server, backend.target, alice()), "alice's plan")
    send(visit(openai_server, backend.target, bob()), "bob's question")
    for user, title in ((alice(), "alice's plan"), (bob(), "bob's question")):
        at = button(visit(openai_server, backend.target, user), "Load History").click().run()
        assert at.dataframe[0].value["title"].tolist() == [title]
    assert open_store(backend.target).list() == [], "nothing in the shared history"


def test_delete_and_restore_work_on_the_database(backend, openai_server):
    at = send(visit(openai_server, backend.target), "delete me")
    button(at, "Delete conversation").click().run()
    assert open_store(backend.target).list() == []
    button(at, "Undo").click().run()
    assert chat(at)[0] == ("user", "delete me")
    assert [s.title for s in open_store(backend.target).list()] == ["delete me"]
