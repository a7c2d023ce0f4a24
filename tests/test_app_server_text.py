"""Text from the model server that is not valid Unicode (a lone surrogate) never loses the reply (AppTest)."""

from __future__ import annotations

import json

from tests.apptest import chat, saved, send
from tests.openai_server import Script

REPLACEMENT = "\ufffd"


def saved_reply(history_dir) -> dict:
    [conversation] = saved(history_dir)
    return conversation["messages"][-1]


def test_a_lone_surrogate_in_a_reply_is_kept_as_a_replacement_character(
    new_visit, openai_server, history_dir
):
    openai_server.enqueue(Script(deltas=["Hello ", "\ud83d", " world"]))
    at = send(new_visit(), "Say hello")
    assert not at.exception and not at.error
    assert chat(at)[-1] == ("assistant", f"Hello {REPLACEMENT} world")
    reply = saved_reply(history_dir)
    assert reply["content"] == f"Hello {REPLACEMENT} world" and reply["finish_reason"] == "stop"
    assert chat(new_visit())[-1] == ("assistant", f"Hello {REPLACEMENT} world"), "shown again on return"


def test_a_surrogate_pair_split_across_two_deltas_is_joined(new_visit, openai_server, history_dir):
    openai_server.enqueue(Script(deltas=["smile ", "\ud83d", "\ude00", "!"]))
    at = send(new_visit(), "Smile")
    assert not at.exception and not at.error
    assert chat(at)[-1] == ("assistant", "smile \U0001f600!")
    assert saved_reply(history_dir)["content"] == "smile \U0001f600!"


def test_a_reply_ending_in_half_a_pair_keeps_everything_before_it(new_visit, openai_server, history_dir):
    openai_server.enqueue(Script(deltas=["cut ", "\ud83d"]))
    at = send(new_visit(), "Cut")
    assert not at.exception and not at.error
    assert saved_reply(history_dir)["content"] == f"cut {REPLACEMENT}"


def test_a_lone_surrogate_in_the_servers_error_text_is_shown_replaced(new_visit, openai_server, history_dir):
    openai_server.enqueue(Script(status=400, message="Bad \udc80 request"))
    at = send(new_visit(), "First")
    assert not at.exception
    assert f"Bad {REPLACEMENT} request" in at.error[0].value
    openai_server.enqueue(Script("partial answer", fault="error_event", fault_after=1, message="Died \ud800"))
    at = send(new_visit(), "Second")
    assert not at.exception
    assert f"Died {REPLACEMENT}" in at.error[0].value
    json.dumps(saved(history_dir), ensure_ascii=False).encode("utf-8")  # every saved text is valid UTF-8
