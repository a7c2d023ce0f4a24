"""Real OpenAI-compatible HTTP server (stdlib only) so tests drive the genuine SDK over a socket.

Script replies with ``OpenAIServer.enqueue``; ``python -m tests.openai_server`` serves echo replies.
``Script(fault=...)`` and ``OpenAIServer.models_fault`` make it answer like a broken server (see FAULTS).
A request's ``max_tokens`` (or ``max_completion_tokens``) cuts the scripted reply to that many pieces, ending
with ``finish_reason: "length"``, as OpenAI does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+\Z")
_LOREM = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]
_CHAT_PATH = "/v1/chat/completions"
HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n"
             "<body><h1>It works!</h1><p>This is the web server's default page.</p></body></html>\n")

# What a broken server sends in place of a chat stream, per Script.fault (streamed replies; "html" always):
#   non_json     a `data:` line that is not JSON (fault_data: the line's text)
#   wrong_shape  a chunk of the wrong shape (fault_data: the JSON value; default `choices` not a list)
#   html         HTTP 200 with Content-Type text/html and a web page (fault_data: the page)
#   empty        HTTP 200 event stream with no events at all, then the end
#   error_event  `data: {"error": {...}}`, as OpenAI sends a failure mid-stream (message: its text)
# Every fault but html and empty comes after `fault_after` content deltas; then the stream ends.
FAULTS = ("non_json", "wrong_shape", "html", "empty", "error_event")
# What GET /v1/models answers instead of the list, per OpenAIServer.models_fault.
MODELS_FAULTS = ("html", "non_json", "wrong_shape")

# status -> (error type, error code, default message); "{model}" is filled in.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_denied_error", "permission_denied", "You are not allowed to use this model."),
    404: ("invalid_request_error", "model_not_found",
          "The model `{model}` does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", "server_error", "The server had an error while processing your request."),
}


def split_tokens(text: str) -> list[str]:
    """Split text like a tokenizer would ("Hello", " world", "!") so streams look realistic."""
    return _TOKEN_RE.findall(text)


def error_payload(status: int, model: str | None = None, message: str | None = None) -> dict:
    """Build the OpenAI error envelope so the SDK maps it to its exception classes."""
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status} error.")
    kind, code, default = ERRORS.get(status, fallback)
    text = message or default.format(model=model or "unknown")
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


@dataclass
class Script:
    """One scripted reply, so a test dictates exactly what the fake model does."""

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    first_token_delay: float = 0
    chunk_delay: float = 0
    tokens_per_second: float | None = None
    finish_reason: str | None = "stop"
    drop_after: int | None = None
    delay_headers: float = 0
    split_every: int | None = None
    deltas: list[str] | None = None
    message: str | None = None
    fault: str | None = None  # one of FAULTS
    fault_after: int = 0
    fault_data: Any = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}: use one of {FAULTS}")

    @classmethod
    def long(cls, tokens: int = 4000, tokens_per_second: float | None = 500, **kw: Any) -> Script:
        """Build a long paced reply with paragraphs so benchmarks stress sustained rendering."""
        deltas = [".\n\n" if i % 40 == 39 else (" " if i % 40 else "") + _LOREM[i % len(_LOREM)]
                  for i in range(tokens)]
        return cls(text="".join(deltas), deltas=deltas, tokens_per_second=tokens_per_second, **kw)

    def pieces(self) -> list[str]:
        """Return the content deltas, honouring explicit deltas or fixed-size splitting."""
        if self.deltas is not None:
            return list(self.deltas)
        if self.split_every:
            step = self.split_every
            return [self.text[i:i + step] for i in range(0, len(self.text), step)]
        return split_tokens(self.text)


@dataclass
class RecordedRequest:
    """What the client actually sent, so tests can assert on headers and bodies."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _message_text(message: Any) -> str:
    """Flatten string or multi-part content so echo and usage work for both shapes."""
    content = (message.get("content") if isinstance(message, dict) else None) or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _usage(body: dict, pieces: list[str]) -> dict:
    """Deterministic token counts so usage assertions are stable."""
    prompt = sum(len(split_tokens(_message_text(m))) for m in body.get("messages") or [])
    return {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}


def _length_cap(body: dict) -> int | None:
    """The reply length the client asked for, in tokens (pieces here), if it asked for one."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _capped(script: Script, body: dict) -> tuple[list[str], str | None]:
    """The pieces to send and the finish reason, cut at the requested length like a real server."""
    pieces, cap = script.pieces(), _length_cap(body)
    if cap is not None and len(pieces) > cap:
        return pieces[:cap], "length"
    return pieces, script.finish_reason


def _envelope(model: str) -> dict:
    """Id/created/model shared by every chunk of one response, as OpenAI does."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}


def _chunk(envelope: dict, delta: dict, finish_reason: str | None = None) -> dict:
    """One chat.completion.chunk carrying a delta."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {**envelope, "object": "chat.completion.chunk", "choices": [choice]}


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its OpenAIServer and never blocks interpreter exit."""

    daemon_threads = True
    app: OpenAIServer


class _Handler(BaseHTTPRequestHandler):
    """Routes OpenAI endpoints to the owning OpenAIServer's scripted behaviour."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        """Track the socket so stop() can also cut idle keep-alive connections."""
        super().setup()
        self.server.app._connections.add(self.connection)

    def finish(self) -> None:
        """Untrack the socket; a peer that already vanished is not an error."""
        self.server.app._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        """Serve keep-alive requests; a client vanishing mid-request or while idle is normal."""
        with contextlib.suppress(OSError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet unless the server was started verbose."""
        if self.server.app.verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        """Record the request, then route it to the endpoint."""
        app, body = self.server.app, self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        with app._lock:
            app.requests.append(RecordedRequest(self.command, self.path, headers, body))
        route = (self.command, self.path.split("?")[0].rstrip("/"))
        if route == ("GET", "/v1/models"):
            self._models(app.models_fault)
        elif route == ("POST", _CHAT_PATH):
            self._chat(body)
        else:
            error = {"message": f"Invalid URL ({route[0]} {route[1]})", "type": "invalid_request_error",
                     "param": None, "code": None}
            self._send_json(404, {"error": error})

    do_GET = do_POST = _dispatch

    def _models(self, fault: str | None) -> None:
        """The model list, or the nonsense OpenAIServer.models_fault asks for."""
        if fault == "html":
            return self._send_html(HTML_PAGE)
        if fault == "non_json":
            return self._send_raw(200, "application/json", b"<not json at all>")
        if fault == "wrong_shape":
            return self._send_json(200, {"object": "list", "data": "test-model"})
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "test"}
                for m in self.server.app.models]
        return self._send_json(200, {"object": "list", "data": data})

    def _read_body(self) -> Any:
        """Read and parse the JSON body; None when absent or not JSON."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _chat(self, body: Any) -> None:
        """Serve one chat completion from the next script (or the echo default)."""
        app = self.server.app
        if not isinstance(body, dict):
            self._send_json(400, error_payload(400, message="Request body must be a JSON object."))
            return
        script = app._next_script(body)
        app._wait(script.delay_headers)
        envelope = _envelope(str(body.get("model", "")))
        if script.status >= 400:
            message = script.message or script.text or None
            self._send_json(script.status, error_payload(script.status, envelope["model"], message),
                            script.headers)
        elif script.fault == "html":
            self._send_html(script.fault_data or HTML_PAGE, script.headers)
        elif body.get("stream"):
            self._stream(script, body, envelope)
        else:
            app._wait(script.first_token_delay)
            pieces, finish_reason = _capped(script, body)
            message = {"role": "assistant", "content": "".join(pieces), "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            payload = {**envelope, "object": "chat.completion", "choices": [choice],
                       "usage": _usage(body, pieces)}
            self._send_json(200, payload, script.headers, drop=script.drop_after is not None)

    def _stream(self, script: Script, body: dict, envelope: dict) -> None:
        """Send Server-Sent Events exactly like OpenAI, one HTTP chunk per event."""
        app = self.server.app
        self._start_response(200, "text/event-stream; charset=utf-8", script.headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        app._wait(script.first_token_delay)
        if script.fault == "empty":
            return self._write_chunk(b"")
        self._event(_chunk(envelope, {"role": "assistant", "content": ""}))
        (pieces, finish_reason), start = _capped(script, body), time.monotonic()
        for index, piece in enumerate(pieces):
            if index == script.drop_after:
                return self._drop()
            if script.fault and index == script.fault_after:
                return self._fault(script, envelope)
            if index:
                app._pace(script, start, index)
            try:
                self._event(_chunk(envelope, {"content": piece}))
            except (BrokenPipeError, ConnectionResetError):
                app.hung_up.append((index, len(pieces)))  # the client stopped reading: stop generating
                return None
        if script.drop_after is not None:
            return self._drop()
        if script.fault:
            return self._fault(script, envelope)
        if finish_reason is not None:
            self._event(_chunk(envelope, {}, finish_reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = {**_chunk(envelope, {}), "choices": [], "usage": _usage(body, pieces)}
            self._event(usage_chunk)
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")
        return None

    def _fault(self, script: Script, envelope: dict) -> None:
        """Send the scripted nonsense as one SSE event, then end the stream cleanly."""
        if script.fault == "non_json":
            data = script.fault_data or "this is not JSON {"
        elif script.fault == "wrong_shape":
            shape = script.fault_data if script.fault_data is not None else {**_chunk(envelope, {}),
                                                                             "choices": "not a list"}
            data = json.dumps(shape)
        else:  # error_event
            message = script.message or "The model crashed while generating."
            data = json.dumps({"error": {"message": message, "type": "server_error", "param": None,
                                         "code": "internal_error"}})
        self._write_chunk(f"data: {data}\n\n".encode())
        self._write_chunk(b"")

    def _send_html(self, page: str, extra: dict | None = None) -> None:
        """Send a web page with status 200, as a proxy or web server at the wrong address does."""
        self._send_raw(200, "text/html; charset=utf-8", page.encode(), extra)

    def _start_response(self, status: int, content_type: str, extra: dict[str, str]) -> None:
        """Status line plus common and scripted headers."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, str(value))

    def _send_json(self, status: int, payload: dict, extra: dict | None = None, drop: bool = False) -> None:
        """Send a complete JSON response; with drop, cut it off halfway through the body."""
        data = json.dumps(payload).encode()
        self._send_raw(status, "application/json", data[: len(data) // 2] if drop else data, extra,
                       length=len(data))
        if drop:
            self._drop()

    def _send_raw(self, status: int, content_type: str, data: bytes, extra: dict | None = None,
                  length: int | None = None) -> None:
        """Send a body as it is; `length` may promise more than is sent, for a cut-off response."""
        self._start_response(status, content_type, extra or {})
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)

    def _event(self, payload: dict) -> None:
        """Write one SSE data event as its own chunk."""
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk and flush so the client sees it immediately."""
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Abruptly shut the TCP connection so the client sees a broken response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


class OpenAIServer:
    """Serve scripted OpenAI replies over real HTTP so the SDK is exercised end to end."""

    def __init__(self, models: list[str] | None = None, port: int = 0,
                 tokens_per_second: float | None = None, verbose: bool = False) -> None:
        self.models = list(models or ["test-model"])
        self._initial_models = list(self.models)
        self.models_fault: str | None = None  # one of MODELS_FAULTS: /v1/models answers nonsense
        self.port = port
        self.tokens_per_second = tokens_per_second
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self.hung_up: list[tuple[int, int]] = []  # (sent, scripted) pieces of streams the client closed
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind 127.0.0.1 and serve in a daemon thread so tests never hang on exit."""
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"openai-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and cut live connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """URL to hand to openai.OpenAI(base_url=...)."""
        return f"{self.url}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the chat completion requests, the ones most tests care about."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].rstrip("/") == _CHAT_PATH]

    @property
    def pending(self) -> int:
        """How many scripted replies are still queued, to assert they were all consumed."""
        with self._lock:
            return len(self._queue)

    def enqueue(self, *replies: str | Script) -> None:
        """Queue replies consumed FIFO, one per chat completion request."""
        scripts = [Script(text=r) if isinstance(r, str) else r for r in replies]
        with self._lock:
            self._queue.extend(scripts)

    def fail_next(self, status: int, times: int = 1, **kw: Any) -> None:
        """Make the next `times` chat requests fail with an OpenAI-style error."""
        self.enqueue(*(Script(status=status, **kw) for _ in range(times)))

    def reset(self) -> None:
        """Forget queued replies, recorded requests, changed models and faults between tests."""
        with self._lock:
            self.models = list(self._initial_models)
            self.models_fault = None
            self._queue.clear()
            self.requests.clear()
            self.hung_up.clear()

    def _next_script(self, body: dict) -> Script:
        """Pop the next scripted reply, defaulting to a deterministic echo."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        last = _message_text(users[-1]) if users else ""
        return Script(text=f"Echo: {last}", tokens_per_second=self.tokens_per_second)

    def _wait(self, seconds: float) -> None:
        """Sleep, but abort the in-flight response as soon as the server stops."""
        if self._stopping.wait(max(seconds, 0)):
            raise ConnectionAbortedError("server stopped")

    def _pace(self, script: Script, start: float, index: int) -> None:
        """Delay delta `index`: clock-scheduled for tokens_per_second, else chunk_delay."""
        if script.tokens_per_second:
            self._wait(start + index / script.tokens_per_second - time.monotonic())
        else:
            self._wait(script.chunk_delay)


def main(argv: list[str] | None = None) -> None:
    """Serve echo replies forever for manual checks of the real app."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible echo server for tests.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--models", default="test-model", help="comma-separated model ids")
    parser.add_argument("--tokens-per-second", type=float, default=None)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    server = OpenAIServer(models, args.port, args.tokens_per_second, verbose=True).start()
    try:
        print(f"Serving OpenAI-compatible API at {server.base_url} (Ctrl+C to stop)", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Stopping.", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
