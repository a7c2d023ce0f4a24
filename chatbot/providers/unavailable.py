"""A stand-in provider for when no backend can answer: the chat still opens and says how to fix it."""

from __future__ import annotations

from chatbot.errors import ChatError
from chatbot.prompt import estimate_tokens
from chatbot.providers.base import ChatRequest, Reply, ReplyStream


class UnavailableProvider:
    """Every request fails with the error that made the real provider unavailable."""

    backend = "unavailable"
    context_tokens = None
    reply_tokens = None
    busy = False

    def __init__(self, error: ChatError):
        self.error = error

    def execute(self, request: ChatRequest) -> Reply:
        return Reply(self._fail())

    def list_models(self) -> list[str]:
        return []

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _fail(self) -> ReplyStream:
        raise self.error
        yield ""  # makes this a generator, so the error surfaces while the reply streams
