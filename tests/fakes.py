"""An in-memory provider for tests of the chat logic: enqueue replies, then read what it was asked."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from chatbot.errors import ChatError
from chatbot.prompt import estimate_tokens
from chatbot.providers.base import ChatRequest, Outcome, Reply, ReplyStream


@dataclass
class Scripted:
    """A reply to give: these deltas, then this finish reason (None: cut off), or this error midway."""

    deltas: tuple[str, ...]
    finish_reason: str | None = "stop"
    error: Exception | None = None  # a ChatError, or any exception a buggy provider might raise


class FakeProvider:
    """Answers from a queue, or echoes the last user message when the queue is empty."""

    backend = "fake"
    reply_tokens = None
    busy = False

    def __init__(self, context_tokens: int | None = None):
        self.context_tokens = context_tokens
        self.queue: deque[Scripted | ChatError] = deque()
        self.requests: list[ChatRequest] = []

    def enqueue(self, *replies: str | Scripted | ChatError) -> None:
        for reply in replies:
            self.queue.append(
                Scripted(tuple(re.findall(r"\s*\S+", reply))) if isinstance(reply, str) else reply
            )

    def execute(self, request: ChatRequest) -> Reply:
        self.requests.append(request)
        reply = self.queue.popleft() if self.queue else None
        if reply is None:
            reply = Scripted(("Echo: ", request.messages[-1]["content"]))
        return Reply(self._stream(reply, request.model))

    def list_models(self) -> list[str]:
        return ["fake-model"]

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _stream(self, reply: Scripted | ChatError, model: str) -> ReplyStream:
        if isinstance(reply, ChatError):
            raise reply
        yield from reply.deltas
        if reply.error:
            raise reply.error
        return Outcome(reply.finish_reason, {"total_tokens": len(reply.deltas)}, model)
