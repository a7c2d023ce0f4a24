"""What an OpenAI-compatible server must send, checked, so a server speaking nonsense gets explained."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx2
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from chatbot.surrogates import mend

# What the server sent instead, as the "bad_response" message names it.
HTML_PAGE = "an HTML page"
EMPTY_REPLY = "an empty reply"
NOT_JSON_LINE = "a line that is not JSON"
WRONG_SHAPE_CHUNK = "a chunk of the wrong shape"
NOT_JSON_REPLY = "a reply that is not JSON"
WRONG_SHAPE_MODELS = "a model list of the wrong shape"


class NotOpenAIFormat(Exception):
    """The server answered, but not in the OpenAI format; `what` says what it sent instead."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class ChunkParts:
    """The parts of one streamed chunk the app uses, each of the type the protocol promises."""

    deltas: list[str]
    finish_reason: str | None
    usage: dict | None
    model: str | None


def is_html(response: httpx2.Response) -> bool:
    """True for a web page: a wrong address often answers 200 with one, which no SSE parser reads."""
    return "html" in response.headers.get("content-type", "").lower()


def read_chunk(chunk: object) -> ChunkParts:
    """The text, finish reason, usage and model of a chunk; NotOpenAIFormat if any has the wrong type."""
    if not isinstance(chunk, ChatCompletionChunk):  # the SDK passes a JSON string, list or null as it is
        raise NotOpenAIFormat(WRONG_SHAPE_CHUNK)
    choices = [] if chunk.choices is None else chunk.choices
    usage = chunk.usage
    if (
        not isinstance(choices, list)
        or not isinstance(chunk.model, str | None)
        or not isinstance(usage, CompletionUsage | None)
    ):
        raise NotOpenAIFormat(WRONG_SHAPE_CHUNK)
    deltas, finish_reason = [], None
    for choice in choices:
        content, ended = _choice_parts(choice)
        if content:
            deltas.append(content)
        finish_reason = ended or finish_reason
    usage_dict = None if usage is None else usage.model_dump(exclude_none=True, warnings=False)
    model = None if chunk.model is None else mend(chunk.model)
    return ChunkParts(deltas, None if finish_reason is None else mend(finish_reason), usage_dict, model)


def _choice_parts(choice: object) -> tuple[str | None, str | None]:
    """One choice's text and finish reason, checked the way read_chunk checks the chunk."""
    if not isinstance(choice, Choice) or not isinstance(choice.delta, ChoiceDelta | None):
        raise NotOpenAIFormat(WRONG_SHAPE_CHUNK)
    content = None if choice.delta is None else choice.delta.content
    if not isinstance(content, str | None) or not isinstance(choice.finish_reason, str | None):
        raise NotOpenAIFormat(WRONG_SHAPE_CHUNK)
    return content, choice.finish_reason


def model_ids(response: httpx2.Response) -> list[str]:
    """The ids in a /v1/models answer, in its order; NotOpenAIFormat if it is not such a list."""
    if is_html(response):
        raise NotOpenAIFormat(HTML_PAGE)
    try:
        listing = json.loads(response.content)
    except ValueError:  # not JSON, or not UTF-8
        raise NotOpenAIFormat(NOT_JSON_REPLY) from None
    models = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(models, list) or not all(
        isinstance(model, dict) and isinstance(model.get("id"), str) for model in models
    ):
        raise NotOpenAIFormat(WRONG_SHAPE_MODELS)
    return [model["id"] for model in models]
