"""The provider interface every backend implements: stream text deltas, then say how the reply ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatbot.errors import ChatError, redact

logger = logging.getLogger(__name__)

# How a reply can end. "stop" and "length" come from the model; the others are ours.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_INTERRUPTED = "interrupted"  # the stream dropped or ended without a finish reason
FINISH_STOPPED = "stopped"  # the user stopped it
FINISH_ERROR = "error"  # the request failed before any text arrived
WAIT_MESSAGE = "Waiting for another conversation's reply to finish…"


@dataclass(frozen=True)
class ChatRequest:
    """What a provider is asked: OpenAI-style message dicts and generation options."""

    messages: Sequence[dict]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How a provider's stream ended, returned by its generator after the last delta."""

    finish_reason: str | None
    usage: dict | None = None
    model: str | None = None


# A provider's stream: yields text deltas, returns an Outcome, raises ChatError on failure.
ReplyStream = Generator[str, None, Outcome]


class Reply:
    """A streamed reply: iterate it for text deltas, then read how it ended.

    Iterating never raises for provider faults, foreseen or not: the failure ends the stream and
    is kept in `error`, so whatever text arrived is kept and can be saved. Only stop() ends a
    reply as FINISH_STOPPED.
    """

    def __init__(self, stream: ReplyStream):
        self._stream = stream
        self.text = ""
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.model: str | None = None
        self.error: ChatError | None = None
        self.first_token_ms: int | None = None
        self.latency_ms: int | None = None

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        try:
            while True:
                delta = next(self._stream)
                if delta:
                    if self.first_token_ms is None:
                        self.first_token_ms = round((time.perf_counter() - started) * 1000)
                    self.text += delta
                    yield delta
        except StopIteration as done:
            outcome = done.value or Outcome(finish_reason=None)
            self.finish_reason = outcome.finish_reason or FINISH_INTERRUPTED
            self.usage = outcome.usage
            self.model = outcome.model
        except ChatError as error:
            self._fail(error)
        except Exception as error:  # noqa: BLE001 - kept in `error`: a bug must not pass for a Stop
            detail = redact(f"{type(error).__name__}: {error}")
            logger.warning("The reply failed unexpectedly: %s", detail)
            self._fail(ChatError("unexpected", detail=detail))
        finally:
            self.latency_ms = round((time.perf_counter() - started) * 1000)
            if self.finish_reason is None:  # the consumer stopped reading early
                self.stop()

    def _fail(self, error: ChatError) -> None:
        """Keep the failure and what arrived before it, so the chat can save and explain both."""
        self.error = error
        self.finish_reason = FINISH_INTERRUPTED if self.text else FINISH_ERROR

    def stop(self) -> None:
        """Stop reading the model, if it is still being read: closing the generator closes the connection."""
        if self.finish_reason is None:
            self._stream.close()
            self.finish_reason = FINISH_STOPPED

    @property
    def complete(self) -> bool:
        return self.finish_reason in (FINISH_STOP, FINISH_LENGTH)


class Provider(Protocol):
    """A chat backend. `execute` returns at once; the work happens while the reply is iterated."""

    backend: str  # "openai" or "local", shown in the sidebar
    context_tokens: int | None  # the model's context window, when the provider knows it
    reply_tokens: int | None  # the longest reply it gives unless asked for less, when it has one
    busy: bool  # a new request would first wait for another one (the local model takes turns)

    def execute(self, request: ChatRequest) -> Reply: ...

    def list_models(self) -> list[str]: ...

    def count_tokens(self, text: str) -> int: ...
