"""A model server that answers nonsense (AppTest): the user is told why, never shown a traceback."""

from __future__ import annotations

import pytest

from tests.apptest import button, chat, go_to, saved, send
from tests.openai_server import Script

OPENAI_FORMAT = "did not answer in the OpenAI format"


pytestmark = pytest.mark.usefixtures("fresh_backend")


def user_messages_saved(history_dir) -> list[str]:
    [conversation] = saved(history_dir)
    return [m["content"] for m in conversation["messages"]]


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (Script("never", fault="non_json"), "it sent a line that is not JSON"),
        (Script("never", fault="wrong_shape"), "it sent a chunk of the wrong shape"),
        (Script("never", fault="wrong_shape", fault_data="a string"), "it sent a chunk of the wrong shape"),
        (Script("never", fault="html"), "it sent an HTML page"),
        (Script("never", fault="empty"), "it sent an empty reply"),
    ],
    ids=["non-json", "choices-not-a-list", "json-string", "html", "empty"],
)
def test_a_reply_not_in_the_openai_format_is_explained_and_retry_sends_it_again(
    new_visit, openai_server, history_dir, script, says
):
    openai_server.enqueue(script)
    at = send(new_visit(), "Are you there?")
    assert not at.exception
    [error] = at.error
    assert OPENAI_FORMAT in error.value and says in error.value
    assert openai_server.base_url in error.value and "OPENAI_BASE_URL" in error.value
    assert chat(at) == [("user", "Are you there?")]
    assert user_messages_saved(history_dir) == ["Are you there?"]
    button(at, "Retry").click().run()
    assert not at.exception and not at.error
    assert chat(at) == [("user", "Are you there?"), ("assistant", "Echo: Are you there?")]


def test_an_error_event_mid_stream_keeps_the_text_and_shows_the_servers_words_redacted(
    new_visit, openai_server, history_dir
):
    key = "sk-apptest-secret-0123456789"
    said = f"Backend overloaded; request by key {key} was cancelled"
    openai_server.enqueue(Script("The answer is forty-two", fault="error_event", fault_after=2, message=said))
    at = send(new_visit(OPENAI_API_KEY=key), "What is the answer?")
    assert not at.exception
    [error] = at.error
    assert "The model server reported an error: Backend overloaded" in error.value
    assert key not in error.value and "dropped" not in error.value
    assert chat(at) == [("user", "What is the answer?"), ("assistant", "The answer")]
    assert "interrupted" in at.chat_message[-1].caption[0].value
    [conversation] = saved(history_dir)
    assert [m["content"] for m in conversation["messages"]] == ["What is the answer?", "The answer"]
    assert conversation["messages"][-1]["status"] == "interrupted"
    assert key not in str(conversation)
    assert any(b.label == "Regenerate" for b in at.button)


def test_a_hang_before_the_first_token_says_nothing_arrived(new_visit, openai_server, history_dir):
    openai_server.enqueue(Script("too late", first_token_delay=3))
    at = send(new_visit(CHATBOT_TIMEOUT=0.5), "hello?")
    assert not at.exception
    [error] = at.error
    assert "did not answer in time" in error.value and "arrived" not in error.value
    assert chat(at) == [("user", "hello?")]
    assert user_messages_saved(history_dir) == ["hello?"]
    assert any(b.label == "Retry" for b in at.button)


def visit_every_page(at):
    """Open the Chat, History and Insights pages in turn; each must render without an exception."""
    assert not at.exception and at.chat_input
    for page in ("history", "insights", "chat"):
        go_to(at, page)
        at.run()
        assert not at.exception, page
    return at


def test_a_model_list_in_html_falls_back_to_chatbot_model(new_visit, openai_server, history_dir):
    openai_server.models_fault = "html"
    at = visit_every_page(new_visit(CHATBOT_MODEL="configured-model"))
    assert next(t for t in at.sidebar.text_input if t.label == "Model").value == "configured-model"
    send(at, "Still there?")
    assert not at.exception and not at.error
    assert chat(at)[-1] == ("assistant", "Echo: Still there?")
    assert openai_server.chat_requests[-1].body["model"] == "configured-model"


@pytest.mark.parametrize("fault", ["html", "non_json", "wrong_shape"])
def test_a_model_list_that_cannot_be_read_says_to_set_chatbot_model(
    new_visit, openai_server, history_dir, fault
):
    openai_server.models_fault = fault
    at = visit_every_page(new_visit())
    send(at, "Which model?")
    assert not at.exception
    [error] = at.error
    assert "/v1/models" in error.value and "CHATBOT_MODEL" in error.value
    assert openai_server.chat_requests == []
    assert user_messages_saved(history_dir) == ["Which model?"]
    openai_server.models_fault = None
    button(at, "Retry").click().run()
    assert not at.exception and not at.error
    assert chat(at)[-1] == ("assistant", "Echo: Which model?")
