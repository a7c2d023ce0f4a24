"""Stale pages never act on the wrong conversation: another tab deleted or added conversations, or
this one is full (AppTest, real test server, a real JSON folder written by "another tab")."""

from __future__ import annotations

from history.models import Conversation, make_message
from history.stores.json_store import JsonHistoryStore
from tests.apptest import WELCOME, button, chat, saved, send
from tests.test_app_history import history_with, pick


def another_tab(history_dir) -> JsonHistoryStore:
    return JsonHistoryStore(history_dir)


def conversation_titled(store: JsonHistoryStore, title: str) -> Conversation:
    return next(store.get(s.id) for s in store.list() if s.title == title)


def test_a_row_of_a_stale_history_table_opens_the_conversation_it_showed(new_visit, history_dir):
    at = history_with(new_visit, "alpha", "beta", "gamma")
    assert at.dataframe[0].value["title"].tolist() == ["gamma", "beta", "alpha"]
    store = another_tab(history_dir)
    store.delete(conversation_titled(store, "gamma").id)
    for title in ("delta", "epsilon"):
        fresh = Conversation(model="test-model")
        fresh.add(make_message("user", title))
        store.create(fresh)
    pick(at, 1)  # the row that showed "beta" when the user clicked it
    assert not at.exception
    assert chat(at) == [("user", "beta"), ("assistant", "Echo: beta")]


def test_a_row_deleted_in_another_tab_says_so_instead_of_opening_another(new_visit, history_dir):
    at = history_with(new_visit, "alpha", "beta")
    store = another_tab(history_dir)
    store.delete(conversation_titled(store, "beta").id)
    pick(at, 0)
    assert not at.exception
    assert "deleted in another window" in at.warning[0].value
    assert at.subheader[0].value == "Saved conversations", "still on the History page"


def test_sending_into_a_conversation_deleted_in_another_tab_does_not_bring_it_back(new_visit, history_dir):
    at = send(new_visit(), "hello")
    [conversation] = saved(history_dir)
    another_tab(history_dir).delete(conversation["id"])
    send(at, "are you still there?")
    assert not at.exception
    assert "deleted in another window" in at.error[0].value
    assert at.chat_input[0].value == "are you still there?"
    assert saved(history_dir) == [], "the deleted conversation was silently created again"
    button(at, "Restore").click().run()
    assert chat(at) == [("user", "hello"), ("assistant", "Echo: hello")]
    send(at, "are you still there?")
    assert [m["content"] for m in saved(history_dir)[0]["messages"]] == [
        "hello", "Echo: hello", "are you still there?", "Echo: are you still there?"
    ]


def test_a_full_conversation_refuses_before_asking_and_continues_in_a_new_one(
    new_visit, openai_server, history_dir
):
    full = Conversation(model="test-model", title="A very long chat")
    full.add(make_message("user", "x" * (19 * 2**20 + 500_000)))
    full.add(make_message("assistant", "noted"))
    another_tab(history_dir).create(full)
    at = new_visit()
    send(at, "one more thing")
    assert not at.exception
    assert "reached the 20 MB limit" in at.error[0].value
    assert openai_server.chat_requests == [], "the model was asked for a reply that could not be saved"
    assert at.chat_input[0].value == "one more thing"
    button(at, "Continue in a new conversation").click().run()
    assert chat(at) == WELCOME and at.chat_input[0].value == "one more thing"
    send(at, at.chat_input[0].value)
    assert chat(at) == [("user", "one more thing"), ("assistant", "Echo: one more thing")]
    assert len(saved(history_dir)) == 2
