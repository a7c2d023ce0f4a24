"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1: streams, ends and faults."""

import pytest

from chatbot.errors import ChatError
from chatbot.providers.base import ChatRequest, Reply
from chatbot.providers.openai_provider import OpenAIProvider
from tests.openai_server import Script

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def provider(openai_server):
    return OpenAIProvider("sk-test-key-123456", openai_server.base_url, timeout=2, max_retries=0)


def ask(provider, model="test-model"):
    reply = provider.execute(ChatRequest(messages=HELLO, model=model))
    deltas = list(reply)
    return reply, deltas


def test_a_reply_streams_in_pieces_and_reports_how_it_ended(provider, openai_server):
    openai_server.enqueue("Paris is the capital of France.")
    reply, deltas = ask(provider)
    assert len(deltas) > 3
    assert "".join(deltas) == reply.text == "Paris is the capital of France."
    assert reply.finish_reason == "stop" and reply.complete and reply.error is None
    assert reply.usage["total_tokens"] > 0
    assert reply.first_token_ms is not None and reply.latency_ms >= reply.first_token_ms


def test_the_request_carries_the_conversation_model_and_key(provider, openai_server):
    ask(provider, model="my-model")
    sent = openai_server.chat_requests[-1]
    assert sent.body["model"] == "my-model"
    assert sent.body["messages"] == HELLO
    assert sent.body["stream"] is True
    assert sent.headers["authorization"] == "Bearer sk-test-key-123456"


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (401, "auth", "Check OPENAI_API_KEY"),
        (403, "forbidden", "not allowed"),
        (404, "not_found", "does not know the model 'missing-model'"),
        (429, "rate_limit", "Wait a moment"),
        (500, "server", "internal error (500)"),
        (503, "server", "internal error (503)"),
    ],
)
def test_each_failure_gets_its_own_message(provider, openai_server, status, kind, says):
    openai_server.fail_next(status)
    reply, deltas = ask(provider, model="missing-model")
    assert deltas == [] and reply.text == ""
    assert reply.finish_reason == "error"
    assert reply.error.kind == kind
    assert says in reply.error.message
    assert "sk-test-key" not in reply.error.message


def test_a_stream_without_finish_reason_is_interrupted(provider, openai_server):
    openai_server.enqueue(Script("Half an ans", finish_reason=None))
    reply, _ = ask(provider)
    assert reply.text == "Half an ans"
    assert reply.finish_reason == "interrupted" and reply.error is None


def test_a_dropped_connection_keeps_what_arrived(provider, openai_server):
    openai_server.enqueue(Script("one two three four five six", drop_after=3))
    reply, deltas = ask(provider)
    assert reply.text == "one two three" == "".join(deltas)
    assert reply.finish_reason == "interrupted"
    assert reply.error.kind == "dropped"


def test_a_slow_server_times_out_with_advice(openai_server):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=0.3, max_retries=0)
    openai_server.enqueue(Script("late", delay_headers=1.5))
    reply, _ = ask(provider)
    assert reply.error.kind == "timeout"
    assert "CHATBOT_TIMEOUT" in reply.error.message


def test_a_slow_first_token_still_streams(provider, openai_server):
    openai_server.enqueue(Script("worth the wait", first_token_delay=0.5))
    reply, _ = ask(provider)
    assert reply.text == "worth the wait" and reply.first_token_ms >= 400


def test_connection_refused_names_the_base_url():
    provider = OpenAIProvider("k", "http://127.0.0.1:9/v1", timeout=1, max_retries=0)
    reply, _ = ask(provider)
    assert reply.error.kind == "connection"
    assert "http://127.0.0.1:9/v1" in reply.error.message and "OPENAI_BASE_URL" in reply.error.message


@pytest.mark.parametrize(
    "fault",
    [
        Script(status=429),
        Script(status=500),
        Script(status=502),
        Script(status=503),
        Script("x", delay_headers=1),
    ],
    ids=["429", "500", "502", "503", "timeout"],
)
def test_each_passing_fault_is_retried_with_backoff(openai_server, fault):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=0.5, max_retries=1)
    fault.headers = {"retry-after-ms": "10"} if fault.status != 200 else {}
    openai_server.enqueue(fault, "recovered")
    reply, _ = ask(provider)
    assert reply.text == "recovered" and reply.error is None
    assert len(openai_server.chat_requests) == 2


def test_without_retries_the_fault_reaches_the_user(openai_server):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=2, max_retries=0)
    openai_server.enqueue(Script(status=503), "never asked")
    reply, _ = ask(provider)
    assert reply.error.kind == "server" and len(openai_server.chat_requests) == 1


def test_retries_get_past_a_passing_rate_limit(openai_server):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=2, max_retries=2)
    openai_server.fail_next(429, headers={"retry-after-ms": "10"})
    openai_server.fail_next(503, headers={"retry-after-ms": "10"})
    openai_server.enqueue("third time lucky")
    reply, _ = ask(provider)
    assert reply.text == "third time lucky"
    assert len(openai_server.chat_requests) == 3


def test_stopping_closes_the_stream(provider, openai_server):
    openai_server.enqueue(Script("a b c d e f g h", chunk_delay=0.05))
    reply = provider.execute(ChatRequest(messages=HELLO, model="m"))
    received = []
    for delta in reply:
        received.append(delta)
        if len(received) == 2:
            reply.stop()
            break
    assert reply.finish_reason == "stopped" and reply.text == "a b"


def test_models_are_listed_in_server_order(openai_server, provider):
    openai_server.models = ["first-model", "second-model"]
    assert provider.list_models() == ["first-model", "second-model"]


# A server that answers, but not in the OpenAI format: each fault is explained, never raised.

BASE_URL_HINT = "Check that OPENAI_BASE_URL points at the API"


def assert_bad_response(provider, reply, what):
    assert reply.error.kind == "bad_response"
    assert f"it sent {what}" in reply.error.message
    assert provider.base_url in reply.error.message and BASE_URL_HINT in reply.error.message


def test_a_line_that_is_not_json_ends_the_reply_with_what_arrived(provider, openai_server):
    openai_server.enqueue(Script("one two three", fault="non_json", fault_after=2))
    reply, deltas = ask(provider)
    assert reply.text == "one two" == "".join(deltas)
    assert reply.finish_reason == "interrupted"
    assert_bad_response(provider, reply, "a line that is not JSON")


@pytest.mark.parametrize(
    "chunk",
    [
        {"id": "x", "model": "m", "choices": "not a list"},
        "a JSON string",
        [1, 2, 3],
        {"choices": ["not an object"]},
        {"choices": [{"delta": "not an object"}]},
        {"choices": [{"delta": {"content": 42}}]},
        {"choices": [{"delta": {}, "finish_reason": ["stop"]}]},
        {"choices": [], "model": 7},
        {"choices": [], "usage": "lots"},
    ],
    ids=["choices-string", "string", "list", "choice-string", "delta-string", "content-number",
         "finish-list", "model-number", "usage-string"],
)
def test_a_chunk_of_the_wrong_shape_is_explained(provider, openai_server, chunk):
    openai_server.enqueue(Script("kept so far", fault="wrong_shape", fault_after=2, fault_data=chunk))
    reply, _ = ask(provider)
    assert reply.text == "kept so"
    assert reply.finish_reason == "interrupted"
    assert_bad_response(provider, reply, "a chunk of the wrong shape")


def test_an_html_page_with_status_200_is_explained(provider, openai_server):
    openai_server.enqueue(Script("never", fault="html"))
    reply, deltas = ask(provider)
    assert deltas == [] and reply.finish_reason == "error"
    assert_bad_response(provider, reply, "an HTML page")


@pytest.mark.parametrize(
    "script", [Script("never", fault="empty"), Script("", finish_reason=None)], ids=["no-events", "no-text"]
)
def test_an_empty_reply_with_status_200_is_explained(provider, openai_server, script):
    openai_server.enqueue(script)
    reply, deltas = ask(provider)
    assert deltas == [] and reply.finish_reason == "error"
    assert_bad_response(provider, reply, "an empty reply")


def test_an_error_event_mid_stream_keeps_the_text_and_shows_the_servers_words(provider, openai_server):
    said = "CUDA out of memory while serving sk-test-key-123456 (Bearer abc.def)"
    openai_server.enqueue(Script("The answer is", fault="error_event", fault_after=2, message=said))
    reply, _ = ask(provider)
    assert reply.text == "The answer"
    assert reply.finish_reason == "interrupted"
    assert reply.error.kind == "server_said"
    assert "The model server reported an error: CUDA out of memory" in reply.error.message
    assert "sk-test-key" not in reply.error.message and "abc.def" not in reply.error.message
    assert "dropped" not in reply.error.message


def test_an_error_event_before_any_text_is_the_servers_words_too(provider, openai_server):
    openai_server.enqueue(Script("never", fault="error_event", message="model is loading"))
    reply, _ = ask(provider)
    assert reply.text == "" and reply.finish_reason == "error"
    assert reply.error.kind == "server_said" and "model is loading" in reply.error.message


def test_a_hang_before_the_first_token_is_a_timeout_that_claims_nothing_arrived(openai_server):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=0.3, max_retries=0)
    openai_server.enqueue(Script("too late", first_token_delay=1.5))
    reply, deltas = ask(provider)
    assert deltas == [] and reply.finish_reason == "error"
    assert reply.error.kind == "timeout" and "CHATBOT_TIMEOUT" in reply.error.message
    assert "arrived" not in reply.error.message


def test_a_hang_partway_keeps_the_part_and_says_so(openai_server):
    provider = OpenAIProvider("k", openai_server.base_url, timeout=0.3, max_retries=0)
    openai_server.enqueue(Script(deltas=["first", " part", " never"], chunk_delay=1.5))
    reply, _ = ask(provider)
    assert reply.text == "first" and reply.finish_reason == "interrupted"
    assert reply.error.kind == "stalled"
    assert "part that arrived is kept" in reply.error.message and "CHATBOT_TIMEOUT" in reply.error.message


def test_a_drop_before_any_text_does_not_claim_a_part_arrived(provider, openai_server):
    openai_server.enqueue(Script("one two", drop_after=0))
    reply, _ = ask(provider)
    assert reply.text == "" and reply.finish_reason == "error"
    assert reply.error.kind == "dropped_early" and "Retry" in reply.error.message
    assert "arrived is kept" not in reply.error.message


@pytest.mark.parametrize(
    ("fault", "what"),
    [("html", "an HTML page"), ("non_json", "a reply that is not JSON"),
     ("wrong_shape", "a model list of the wrong shape")],
)
def test_a_model_list_that_cannot_be_read_is_a_chat_error(provider, openai_server, fault, what):
    openai_server.models_fault = fault
    with pytest.raises(ChatError) as info:
        provider.list_models()
    assert info.value.kind == "bad_response" and f"it sent {what}" in info.value.message


# Reply itself: whatever a provider's stream raises ends the reply as an error, never as a Stop.


def failing_stream(*deltas):
    yield from deltas
    raise RuntimeError("decoder exploded")


@pytest.mark.parametrize(("deltas", "ending"), [(("half", " way"), "interrupted"), ((), "error")])
def test_an_unexpected_exception_while_streaming_is_kept_as_the_error(deltas, ending):
    reply = Reply(failing_stream(*deltas))
    assert list(reply) == list(deltas)
    assert reply.text == "".join(deltas) and reply.finish_reason == ending
    assert reply.error.kind == "unexpected" and "decoder exploded" in reply.error.message
    reply.stop()
    assert reply.finish_reason == ending and not reply.complete


def test_only_stop_ends_a_reply_as_stopped():
    reply = Reply(failing_stream("a", "b", "c"))
    for delta in reply:
        if delta == "b":
            reply.stop()
            break
    assert reply.finish_reason == "stopped" and reply.error is None and reply.text == "ab"
