"""Turn a saved conversation into the messages a model is sent, trimmed to fit its context."""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Rough per-message overhead of chat templates (role markers, separators), in tokens.
MESSAGE_OVERHEAD = 4

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """About four characters a token for English: good enough to budget a context window."""
    return (len(text) + 3) // 4


def to_api_message(message: dict) -> dict:
    """Only role and content go to the model: timestamps and metadata stay in the history."""
    return {"role": message["role"], "content": message["content"]}


def build_messages(
    history: Sequence[dict],
    system_prompt: str | None = None,
    *,
    context_tokens: int | None = None,
    reply_tokens: int = 0,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[dict]:
    """System prompt first, then the newest turns that fit in context_tokens minus reply_tokens.

    The oldest turns go first; the system prompt and the newest message are always kept
    (the newest is shortened from its start if it alone is too long).
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns = [to_api_message(m) for m in history if m["role"] != "system" and m["content"]]
    if context_tokens is None:
        return system + turns

    def cost(message: dict) -> int:
        return count_tokens(message["content"]) + MESSAGE_OVERHEAD

    budget = context_tokens - reply_tokens - sum(cost(m) for m in system)
    kept: list[dict] = []
    for message in reversed(turns):
        needed = cost(message)
        if needed > budget:
            if not kept:
                kept.append(_shorten(message, budget, count_tokens))
            break
        kept.append(message)
        budget -= needed
    kept.reverse()
    while kept and kept[0]["role"] == "assistant" and len(kept) > 1:
        kept.pop(0)  # a reply without its question confuses small models
    return system + kept


def _shorten(message: dict, budget: int, count_tokens: TokenCounter) -> dict:
    """Keep the end of an over-long message, where the question usually is."""
    text = message["content"]
    room = max(budget - MESSAGE_OVERHEAD, 1)
    low, high = 0, len(text)
    while low < high:  # the shortest cut from the start that fits
        middle = (low + high) // 2
        if count_tokens(text[middle:]) <= room:
            high = middle
        else:
            low = middle + 1
    return {"role": message["role"], "content": text[low:]}
