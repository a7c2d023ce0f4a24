"""Tests for the fake OpenAI server, driven through the real openai SDK (never patched)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import openai
import pytest

from tests.openai_server import OpenAIServer, RecordedRequest, Script, split_tokens

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]


@pytest.fixture(scope="module")
def module_server():
    """One server for the whole module keeps the file fast."""
    with OpenAIServer(models=["test-model", "other-model"]) as srv:
        yield srv


@pytest.fixture
def server(module_server):
    """Give each test an empty queue and request log."""
    module_server.reset()
    module_server.models = ["test-model", "other-model"]
    yield module_server
    module_server.reset()


@pytest.fixture
def client(server):
    """A genuine SDK client with retries off so errors surface immediately."""
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as sdk:
        yield sdk


def stream_chunks(client, **kw):
    """Create a streaming chat completion and collect every chunk."""
    kw.setdefault("model", "test-model")
    kw.setdefault("messages", MESSAGES)
    return list(client.chat.completions.create(stream=True, **kw))


def content_of(chunks):
    """Join the content deltas of streamed chunks."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_post(server, body):
    """POST over a raw socket; the response's head (lowercase) and its body as sent."""
    payload = json.dumps(body).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request + payload)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode().lower(), rest


def raw_chunks(server, body):
    """POST over a raw socket and split the chunked body, to check the exact wire format."""
    head, rest = raw_post(server, body)
    chunks = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        chunks.append(rest[:size])
        rest = rest[size + 2:]
    return head, chunks


def test_split_tokens_keeps_whitespace_attached():
    assert split_tokens("Hello world!") == ["Hello", " world", "!"]
    text = "  Hi,\n\nthere  you\tgo. "
    assert "".join(split_tokens(text)) == text


def test_streaming_assembles_scripted_text(server, client):
    server.enqueue("Hello world, how are you?")
    chunks = stream_chunks(client)
    first = chunks[0].choices[0]
    assert (first.delta.role, first.delta.content, first.finish_reason) == ("assistant", "", None)
    assert content_of(chunks) == "Hello world, how are you?"
    assert [c.choices[0].delta.content for c in chunks[1:3]] == ["Hello", " world"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {"test-model"}
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_wire_format_is_one_sse_event_per_http_chunk(server):
    server.enqueue(Script(deltas=["a", "b"]))
    head, chunks = raw_chunks(server, {"model": "m", "messages": MESSAGES, "stream": True})
    assert "content-type: text/event-stream" in head and "transfer-encoding: chunked" in head
    assert chunks[-2:] == [b"data: [DONE]\n\n", b""]
    events = [json.loads(c.removeprefix(b"data: ")) for c in chunks[:-2]]
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks[:-1])
    assert [e["choices"][0]["delta"] for e in events] == [
        {"role": "assistant", "content": ""}, {"content": "a"}, {"content": "b"}, {}]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_usage_chunk_only_when_requested(server, client):
    server.enqueue("one two three", "one two three")
    plain = stream_chunks(client)
    assert all(c.usage is None and c.choices for c in plain)
    chunks = stream_chunks(client, stream_options={"include_usage": True})
    assert chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage.completion_tokens == 3
    assert usage.prompt_tokens == len(split_tokens("Be brief.")) + len(split_tokens("hi there"))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_non_streaming_default_echo(server, client):
    reply = client.chat.completions.create(model="other-model", messages=MESSAGES)
    assert reply.object == "chat.completion" and reply.model == "other-model"
    assert reply.choices[0].message.content == "Echo: hi there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == len(split_tokens("Echo: hi there"))


def test_replies_are_consumed_fifo_then_echo(server, client):
    server.enqueue("first", Script(text="second"))
    assert server.pending == 2
    texts = [content_of(stream_chunks(client)) for _ in range(3)]
    assert texts == ["first", "second", "Echo: hi there"]
    assert server.pending == 0


def test_exact_deltas_and_split_every(server, client):
    server.enqueue(Script(deltas=["He", "llo", " wor", "ld"]), Script(text="abcdefg", split_every=3))
    assert [c.choices[0].delta.content for c in stream_chunks(client)[1:-1]] == ["He", "llo", " wor", "ld"]
    assert [c.choices[0].delta.content for c in stream_chunks(client)[1:-1]] == ["abc", "def", "g"]


@pytest.mark.parametrize(
    ("status", "exc_type", "code"),
    [
        (401, openai.AuthenticationError, "invalid_api_key"),
        (403, openai.PermissionDeniedError, "permission_denied"),
        (404, openai.NotFoundError, "model_not_found"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error"),
    ],
)
def test_error_statuses_raise_matching_sdk_exceptions(server, client, status, exc_type, code):
    server.fail_next(status, headers={"retry-after": "7"})
    with pytest.raises(exc_type) as info:
        stream_chunks(client, model="gpt-missing")
    err = info.value
    assert err.status_code == status and err.code == code
    assert err.message.endswith(err.body["message"]) and err.body["message"] in str(err)
    assert err.response.headers["retry-after"] == "7"
    assert err.response.headers["content-type"] == "application/json"
    if status == 404:
        assert "gpt-missing" in err.body["message"]
    assert len(server.chat_requests) == 1


def test_fail_next_times_and_custom_message(server, client):
    server.fail_next(429, times=2, message="slow down")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError, match="slow down"):
            client.chat.completions.create(model="test-model", messages=MESSAGES)
    assert content_of(stream_chunks(client)) == "Echo: hi there"


def test_drop_after_breaks_the_stream(server, client):
    server.enqueue(Script(text="one two three four", drop_after=2))
    received = []
    stream = client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError) as info:
        received.extend(stream)  # keeps the chunks that arrived before the drop
    assert type(info.value) is openai.APIConnectionError
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert content_of(received) == "one two"
    server.enqueue(Script(text="one two", drop_after=0))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="test-model", messages=MESSAGES)


def test_finish_reason_none_ends_cleanly_without_reason(server, client):
    server.enqueue(Script(text="no reason given", finish_reason=None),
                   Script(text="cut", finish_reason="length"))
    chunks = stream_chunks(client)
    assert content_of(chunks) == "no reason given"
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert stream_chunks(client)[-1].choices[0].finish_reason == "length"


def test_delay_headers_triggers_client_timeout(server, client):
    server.enqueue(Script(text="late", delay_headers=2))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as info:
        stream_chunks(client.with_options(timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert isinstance(info.value.__cause__, httpx2.TimeoutException)


def test_first_token_delay_comes_after_headers(server, client):
    server.enqueue(Script(text="a b", first_token_delay=0.3))
    started = time.monotonic()
    stream = client.chat.completions.create(model="test-model", messages=MESSAGES, stream=True)
    assert time.monotonic() - started < 0.2
    assert content_of(list(stream)) == "a b"
    assert time.monotonic() - started >= 0.29


@pytest.mark.parametrize("script", [Script(text="a b c d e f g h i j", tokens_per_second=50),
                                    Script(text="a b c d e f g h i j", chunk_delay=0.02)])
def test_pacing_between_deltas(server, client, script):
    server.enqueue(script)
    started = time.monotonic()
    stream_chunks(client)
    assert 9 * 0.02 * 0.95 <= time.monotonic() - started < 1


def test_long_script_has_exact_token_count():
    script = Script.long(tokens=500, tokens_per_second=None)
    assert len(script.pieces()) == 500 and script.text == "".join(script.pieces())
    assert "\n\n" in script.text and Script.long().tokens_per_second == 500


def test_models_list_follows_attribute(server, client):
    assert [m.id for m in client.models.list()] == ["test-model", "other-model"]
    server.models = ["only-one"]
    model = client.models.list().data[0]
    assert (model.id, model.object, model.owned_by) == ("only-one", "model", "test")


def test_requests_are_recorded(server, client):
    client.models.list()
    server.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        stream_chunks(client)
    stream_chunks(client, stream_options={"include_usage": True})
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/chat/completions")]
    assert server.requests[0].body is None
    chat = server.chat_requests
    assert len(chat) == 2 and all(isinstance(r, RecordedRequest) for r in chat)
    assert chat[-1].headers["authorization"] == "Bearer test-key"
    assert chat[-1].body["messages"] == MESSAGES and chat[-1].body["stream"] is True
    server.reset()
    assert server.requests == [] and server.chat_requests == []


def test_concurrent_streams_do_not_interfere(server, client):
    def ask(i):
        return content_of(stream_chunks(client, messages=[{"role": "user", "content": f"q{i}"}]))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(ask, range(8))) == [f"Echo: q{i}" for i in range(8)]


def test_unknown_route_returns_json_404(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.url}/v1/nope", timeout=5)
    assert json.loads(info.value.read())["error"]["message"] == "Invalid URL (GET /v1/nope)"


def test_stop_cuts_connections_and_wakes_sleepers():
    srv = OpenAIServer().start()
    sdk = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0, timeout=5)
    assert content_of(stream_chunks(sdk)) == "Echo: hi there"
    srv.enqueue(Script(text="never", first_token_delay=30))
    stream = sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    started = time.monotonic()
    srv.stop()
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    with pytest.raises(openai.APIConnectionError):
        stream_chunks(sdk)
    assert time.monotonic() - started < 2
    srv.stop()
    port = srv.port
    with srv:
        assert srv.port == port and content_of(stream_chunks(sdk)) == "Echo: hi there"


def test_runs_as_script():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "tests.openai_server", "--port", str(port), "--models", "a,b"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "127.0.0.1" in proc.stdout.readline()
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        assert [m.id for m in sdk.models.list()] == ["a", "b"]
        assert content_of(stream_chunks(sdk, model="a")) == "Echo: hi there"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def raw_get(server, path):
    """GET a path and return (status, content type, body), to check what a fault really sends."""
    with urllib.request.urlopen(f"{server.url}{path}", timeout=5) as response:
        return response.status, response.headers["content-type"], response.read()


def sse_data(chunks):
    """The data of each SSE event in a chunked body, without the final empty chunk."""
    return [c.removeprefix(b"data: ").removesuffix(b"\n\n").decode() for c in chunks if c]


STREAM = {"model": "m", "messages": MESSAGES, "stream": True}


def test_a_non_json_line_comes_after_the_scripted_deltas_and_ends_the_stream(server):
    server.enqueue(Script(deltas=["a", "b", "c"], fault="non_json", fault_after=2))
    head, chunks = raw_chunks(server, STREAM)
    assert "content-type: text/event-stream" in head and chunks[-1] == b""
    data = sse_data(chunks)
    assert [json.loads(d)["choices"][0]["delta"].get("content") for d in data[:3]] == ["", "a", "b"]
    assert data[3:] == ["this is not JSON {"]


def test_a_wrong_shape_chunk_is_the_scripted_json_value(server):
    server.enqueue(Script("hi", fault="wrong_shape"),
                   Script("hi", fault="wrong_shape", fault_data="a string"))
    *_, bad = sse_data(raw_chunks(server, STREAM)[1])
    assert json.loads(bad)["choices"] == "not a list" and json.loads(bad)["model"] == "m"
    assert sse_data(raw_chunks(server, STREAM)[1])[-1] == '"a string"'


def test_an_error_event_carries_the_message_like_openai(server, client):
    server.enqueue(Script("partial answer", fault="error_event", fault_after=1, message="GPU on fire"))
    received = []
    with pytest.raises(openai.APIError, match="GPU on fire") as info:
        received.extend(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert not isinstance(info.value, openai.APIStatusError | openai.APIConnectionError)
    assert content_of(received) == "partial"


def test_an_html_page_is_sent_with_status_200(server):
    server.enqueue(Script("hi", fault="html"), Script(fault="html", fault_data="<p>login</p>"))
    head, body = raw_post(server, STREAM)
    assert head.startswith("http/1.1 200") and "content-type: text/html" in head
    assert body.startswith(b"<!DOCTYPE html>") and f"content-length: {len(body)}" in head
    assert raw_post(server, {**STREAM, "stream": False})[1] == b"<p>login</p>"


def test_an_empty_stream_has_no_events(server):
    server.enqueue(Script("never sent", fault="empty"))
    head, chunks = raw_chunks(server, STREAM)
    assert "content-type: text/event-stream" in head and chunks == [b""]


def test_an_unknown_fault_is_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        Script(fault="nonsense")


@pytest.mark.parametrize(
    ("fault", "content_type", "body"),
    [("html", "text/html", b"<html>"), ("non_json", "application/json", b"<not json"),
     ("wrong_shape", "application/json", b'"data": "test-model"')],
)
def test_the_model_list_can_answer_nonsense_until_reset(server, fault, content_type, body):
    server.models_fault = fault
    status, got_type, got = raw_get(server, "/v1/models")
    assert status == 200 and got_type.startswith(content_type) and body in got
    server.models = ["changed"]
    server.reset()
    listed = json.loads(raw_get(server, "/v1/models")[2])["data"]
    assert server.models_fault is None and [m["id"] for m in listed] == ["test-model", "other-model"]


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_a_length_cap_cuts_the_reply_there_like_openai(server, client, name):
    server.enqueue("one two three four five", "one two three four five")
    chunks = stream_chunks(client, **{name: 2})
    assert content_of(chunks) == "one two" and chunks[-1].choices[0].finish_reason == "length"
    whole = client.chat.completions.create(model="m", messages=MESSAGES, **{name: 9})
    assert whole.choices[0].message.content == "one two three four five"
    assert whole.choices[0].finish_reason == "stop"
    assert server.chat_requests[0].body[name] == 2


def test_a_lone_surrogate_in_a_delta_goes_out_as_a_json_escape(server):
    server.enqueue(Script(deltas=["smile ", "\ud83d", "!"]))
    data = sse_data(raw_chunks(server, STREAM)[1])
    assert '"content": "\\ud83d"' in data[2]
    assert json.loads(data[2])["choices"][0]["delta"]["content"] == "\ud83d"
