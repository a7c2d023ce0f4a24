"""The OpenAI-compatible provider: OpenAI itself, Ollama, vLLM, llama.cpp's server, LM Studio."""

from __future__ import annotations

import httpx2
import openai

from chatbot.errors import ChatError, redact
from chatbot.prompt import estimate_tokens
from chatbot.providers.base import ChatRequest, Outcome, Reply, ReplyStream

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """Streams chat completions from any server that speaks the OpenAI protocol."""

    backend = "openai"
    context_tokens = None  # unknown for a remote model: the server enforces its own

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
    ):
        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key
        # The SDK retries 408, 409, 429, 5xx and connection errors with exponential backoff.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    def execute(self, request: ChatRequest) -> Reply:
        return Reply(self._stream(request))

    def list_models(self) -> list[str]:
        """The server's models, in the order it lists them."""
        try:
            return [model.id for model in self._client.models.list()]
        except openai.APIError as error:
            raise self._explain(error, model="") from None

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _stream(self, request: ChatRequest) -> ReplyStream:
        options = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["max_tokens"] = request.max_tokens
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
        finish_reason = usage = model = None
        try:
            for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump(exclude_none=True)
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except (openai.APIError, httpx2.TransportError):
            raise ChatError("dropped") from None
        finally:
            stream.close()
        return Outcome(finish_reason=finish_reason, usage=usage, model=model)

    def _explain(self, error: openai.APIError, *, model: str) -> ChatError:
        """The SDK's exception as a ChatError whose message says what to do."""
        if isinstance(error, openai.APITimeoutError):
            return ChatError("timeout")
        if isinstance(error, openai.APIConnectionError):
            return ChatError("connection", base_url=self.base_url)
        status = getattr(error, "status_code", None)
        kinds = {401: "auth", 403: "forbidden", 404: "not_found", 429: "rate_limit"}
        if status in kinds:
            return ChatError(kinds[status], status=status, model=model)
        if status is not None and status >= 500:
            return ChatError("server", status=status)
        detail = redact(str(getattr(error, "message", error)), self._api_key)
        if status is not None:
            return ChatError("bad_request", status=status, detail=detail)
        return ChatError("unexpected", detail=detail)
