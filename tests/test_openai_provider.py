"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1: streams, ends and faults."""

import pytest

from chatbot.providers.base import ChatRequest
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
