"""The app as a user drives it (AppTest), against the real OpenAI-compatible test server."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import APP, WELCOME, button, chat, saved, send
from tests.openai_server import Script


def test_a_turn_streams_the_reply_and_saves_both_messages(new_visit, openai_server, history_dir):
    openai_server.enqueue("Paris is the capital of France.")
    at = send(new_visit(), "What is the capital of France?")
    assert not at.exception
    assert chat(at) == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital of France."),
    ]
    [conversation] = saved(history_dir)
    assert conversation["schema_version"] == 1
    assert conversation["title"] == "What is the capital of France?"
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["content"] == "Paris is the capital of France."
    assert at.subheader[0].value == "What is the capital of France?"


def test_the_second_turn_sends_the_conversation_as_context(new_visit, openai_server):
    at = send(new_visit(), "My name is Ada.")
    send(at, "What is my name?")
    sent = openai_server.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "My name is Ada." and sent[3]["content"] == "What is my name?"


def test_a_new_browser_session_restores_the_latest_conversation(new_visit):
    send(new_visit(), "Remember me")
    again = new_visit()
    assert chat(again) == [("user", "Remember me"), ("assistant", "Echo: Remember me")]


def test_new_session_asks_load_history_or_start_fresh(new_visit, history_dir):
    at = send(new_visit(), "first conversation")
    button(at, "New Session").click().run()
    labels = [b.label for b in at.button]
    assert "Load History" in labels[labels.index("New Session") + 1 :] or labels.count("Load History") == 2
    assert labels.count("Start Fresh") == 2
    at.button(key="dialog_start_fresh").click().run()
    assert chat(at) == WELCOME and not at.exception
    assert len(saved(history_dir)) == 1
    button(at, "New Session").click().run()
    at.button(key="dialog_load_history").click().run()
    assert at.dataframe[0].value["title"].tolist() == ["first conversation"]


def test_start_fresh_begins_an_empty_chat_and_keeps_the_old_one(new_visit, history_dir):
    at = send(new_visit(), "keep me")
    button(at, "Start Fresh").click().run()
    assert chat(at) == WELCOME
    send(at, "a new topic")
    assert chat(at)[0] == ("user", "a new topic")
    assert sorted(c["title"] for c in saved(history_dir)) == ["a new topic", "keep me"]


def test_load_history_lists_conversations_and_opens_the_picked_row(new_visit):
    at = send(new_visit(), "older chat")
    button(at, "Start Fresh").click().run()
    send(at, "newer chat")
    button(at, "Load History").click().run()
    table = at.dataframe[0].value
    assert table["title"].tolist() == ["newer chat", "older chat"]
    assert table["messages"].tolist() == [2, 2]
    assert set(table.columns) >= {"id", "title", "created", "updated", "messages", "model"}
    table_key = at.dataframe[0].key
    at.session_state[table_key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert chat(at) == [("user", "older chat"), ("assistant", "Echo: older chat")]
    assert at.subheader[0].value == "older chat"


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "Check OPENAI_API_KEY"),
        (403, "not allowed to use this model"),
        (404, "does not know the model"),
        (429, "rate limiting"),
        (500, "internal error (500)"),
    ],
)
def test_a_failure_shows_what_to_do_keeps_the_message_and_retry_sends_it(
    new_visit, openai_server, history_dir, status, says
):
    openai_server.fail_next(status)
    at = send(new_visit(), "Are you there?")
    assert not at.exception
    assert says in at.error[0].value
    assert chat(at) == [("user", "Are you there?")]
    assert [m["content"] for m in saved(history_dir)[0]["messages"]] == ["Are you there?"]
    button(at, "Retry").click().run()
    assert chat(at) == [("user", "Are you there?"), ("assistant", "Echo: Are you there?")]
    assert not at.error
    assert len(saved(history_dir)[0]["messages"]) == 2


def test_a_timeout_and_a_refused_connection_are_explained(new_visit, openai_server, monkeypatch):
    openai_server.enqueue(Script("late", delay_headers=5))
    at = send(new_visit(), "hello?")
    assert "did not answer in time" in at.error[0].value
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    at.secrets["CHATBOT_MODEL"] = "any"
    at.secrets["CHATBOT_MAX_RETRIES"] = 0
    send(at.run(), "anyone?")
    assert "Cannot reach the model server at http://127.0.0.1:9/v1" in at.error[0].value
    assert chat(at)[-1] == ("user", "anyone?")


def test_an_interrupted_stream_is_kept_and_marked(new_visit, openai_server, history_dir):
    openai_server.enqueue(Script("The answer is forty", drop_after=3))
    at = send(new_visit(), "What is the answer?")
    assert chat(at)[-1] == ("assistant", "The answer is")
    assert "interrupted" in at.chat_message[-1].caption[0].value
    assert "dropped" in at.error[0].value
    reply = saved(history_dir)[0]["messages"][-1]
    assert reply["status"] == "interrupted" and reply["content"] == "The answer is"
    new = new_visit()
    assert "interrupted" in new.chat_message[-1].caption[0].value


def test_a_flask_history_file_is_listed_opened_and_never_modified(new_visit, history_dir):
    history_dir.mkdir(parents=True)
    legacy = history_dir / "conversation_history.json"
    legacy.write_text(
        json.dumps(
            [{"role": "user", "content": "old question"}, {"role": "assistant", "content": "old answer"}]
        )
    )
    before = legacy.read_bytes()
    at = new_visit()
    assert chat(at) == [("user", "old question"), ("assistant", "old answer")]
    send(at, "and a new one")
    assert chat(at)[-1] == ("assistant", "Echo: and a new one")
    assert legacy.read_bytes() == before
    button(at, "Load History").click().run()
    assert at.dataframe[0].value["messages"].tolist() == [4]


def test_the_sidebar_says_who_answers(new_visit, openai_server):
    at = new_visit()
    assert "openai" in at.sidebar.caption[-1].value and "test-model" in at.sidebar.caption[-1].value


def test_a_long_conversation_shows_the_newest_messages_and_earlier_ones_on_request(new_visit, history_dir):
    from history.models import Conversation, make_message
    from history.stores.json_store import JsonHistoryStore

    conversation = Conversation(model="test-model")
    for n in range(120):
        conversation.add(make_message("user" if n % 2 == 0 else "assistant", f"message {n}"))
    JsonHistoryStore(history_dir).create(conversation)
    at = new_visit()
    assert len(at.chat_message) == 50 and chat(at)[-1] == ("assistant", "message 119")
    earlier = next(b for b in at.button if b.label.startswith("Show 50 earlier messages (70 hidden)"))
    earlier.click().run()
    assert len(at.chat_message) == 100 and chat(at)[0] == ("user", "message 20")


def test_a_message_over_the_limit_is_refused_and_stays_in_the_box(openai_server, history_dir):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_BASE_URL"] = openai_server.base_url
    at.secrets["CHATBOT_MAX_MESSAGE_CHARS"] = 20
    too_long = "x" * 21
    send(at.run(), too_long)
    assert "21 characters; the limit is 20 (CHATBOT_MAX_MESSAGE_CHARS)" in at.error[0].value
    assert at.chat_input[0].value == too_long
    assert chat(at) == WELCOME and openai_server.chat_requests == [] and saved(history_dir) == []
    send(at, "short enough")
    assert chat(at) == [("user", "short enough"), ("assistant", "Echo: short enough")]
