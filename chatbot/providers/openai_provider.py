"""The OpenAI-compatible provider: OpenAI itself, Ollama, vLLM, llama.cpp's server, LM Studio."""

from __future__ import annotations

import json
import logging

import httpx2
import openai

from chatbot.errors import ChatError, redact
from chatbot.prompt import estimate_tokens
from chatbot.providers.base import ChatRequest, Outcome, Reply, ReplyStream
from chatbot.providers.openai_format import (
    EMPTY_REPLY,
    HTML_PAGE,
    NOT_JSON_LINE,
    NotOpenAIFormat,
    is_html,
    model_ids,
    read_chunk,
)
from chatbot.settings import shown_url, url_secrets
from chatbot.surrogates import SurrogateJoiner

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPENAI_API = "https://api.openai.com/"


class _Redacted(logging.Filter):
    """The HTTP client logs each request's URL: it goes to the log without its credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        shown = redact(text)
        if shown != text:
            record.msg, record.args = shown, None
        return True


logging.getLogger(httpx2.__name__).addFilter(_Redacted())


def length_option(base_url: str) -> str:
    """OpenAI itself refuses `max_tokens` for its reasoning models; other servers know only that name."""
    return "max_completion_tokens" if shown_url(base_url).startswith(OPENAI_API) else "max_tokens"


class OpenAIProvider:
    """Streams chat completions from any server that speaks the OpenAI protocol."""

    backend = "openai"
    context_tokens = None  # unknown for a remote model: the server enforces its own
    reply_tokens = None  # no length of its own: the server's, or CHATBOT_MAX_REPLY_TOKENS
    busy = False  # the server answers requests side by side

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
    ):
        self.base_url = base_url or DEFAULT_BASE_URL
        self._secrets = (api_key, *url_secrets(self.base_url))  # never shown, even quoted by the server
        # The SDK retries 408, 409, 429, 5xx and connection errors with exponential backoff.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    def execute(self, request: ChatRequest) -> Reply:
        return Reply(self._stream(request))

    def list_models(self) -> list[str]:
        """The server's models, in the order it lists them; ChatError if it cannot say."""
        try:
            response = self._client.models.with_raw_response.list().http_response
        except openai.APIError as error:
            raise self._explain(error, model="") from None
        try:
            return model_ids(response)
        except NotOpenAIFormat as error:
            raise ChatError("bad_response", base_url=self.base_url, what=error.what) from None

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _stream(self, request: ChatRequest) -> ReplyStream:
        options = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options[length_option(self.base_url)] = request.max_tokens
        try:
            stream = self._client.chat.completions.create(
                model=request.model,
                messages=list(request.messages),
                stream=True,
                stream_options={"include_usage": True},
                **options,
            )
        except openai.APIError as error:
            raise self._explain(error, model=request.model) from None
        try:
            return (yield from self._read(stream))
        except NotOpenAIFormat as error:
            raise ChatError("bad_response", base_url=self.base_url, what=error.what) from None
        finally:
            stream.close()

    def _read(self, stream: openai.Stream) -> ReplyStream:
        """Yield the stream's text; a fault becomes a ChatError that says whether any text arrived."""
        if is_html(stream.response):
            raise NotOpenAIFormat(HTML_PAGE)
        finish_reason = usage = model = None
        arrived = False
        joiner = SurrogateJoiner()
        try:
            for chunk in stream:
                parts = read_chunk(chunk)
                model = parts.model or model
                usage = parts.usage or usage
                finish_reason = parts.finish_reason or finish_reason
                for delta in parts.deltas:
                    arrived = True
                    yield joiner.feed(delta)
        except json.JSONDecodeError:  # the SDK parses each SSE data line as JSON
            raise NotOpenAIFormat(NOT_JSON_LINE) from None
        except openai.APITimeoutError:
            raise ChatError("stalled" if arrived else "timeout") from None
        except (openai.APIConnectionError, httpx2.TransportError):
            raise ChatError("dropped" if arrived else "dropped_early") from None
        except openai.APIError as error:  # an error event in the stream: the server's own words
            raise ChatError("server_said", detail=redact(error.message, *self._secrets)) from None
        ending = joiner.flush()
        if ending:
            yield ending
        if not arrived and finish_reason is None:  # no events, or none with text or an ending
            raise NotOpenAIFormat(EMPTY_REPLY)
        return Outcome(finish_reason=finish_reason, usage=usage, model=model)

    def _explain(self, error: openai.APIError, *, model: str) -> ChatError:
        """The SDK's exception as a ChatError whose message says what to do."""
        if isinstance(error, openai.APITimeoutError):
            return ChatError("timeout")
        if isinstance(error, openai.APIConnectionError):
            return ChatError("connection", base_url=self.base_url)
        detail = redact(error.message, *self._secrets)
        if not isinstance(error, openai.APIStatusError):
            return ChatError("unexpected", detail=detail)
        status = error.status_code
        kinds = {401: "auth", 403: "forbidden", 404: "not_found", 429: "rate_limit"}
        if status in kinds:
            return ChatError(kinds[status], status=status, model=model)
        if status >= 500:
            return ChatError("server", status=status)
        return ChatError("bad_request", status=status, detail=detail)
