"""Synthetic history for the Insights benchmark: timed, rated, scripted and stopped replies over 90 days."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from bench import history_data as data
from history.models import Conversation, make_message
from history.stores.json_store import encode

DAYS = 90
QUESTIONS = [
    "What is the capital of France?",
    "How do I reset my password?",
    "Can you summarise this article?",
    "Write a haiku about autumn",
    "What's the weather like today?",
    "How do I sort a list in Python?",
    "Translate 'good morning' into Spanish",
    "What are your opening hours?",
    "Explain recursion simply",
    "Give me a recipe for pancakes",
] + [f"Question number {k} about the product" for k in range(40)]


def spelling(question: str, rng: random.Random) -> str:
    """The same question as people type it: case, spaces and trailing punctuation vary."""
    variant = rng.choice((str, str.lower, str.upper, lambda q: q.rstrip("?!.") + "?!"))(question)
    return variant.replace(" ", "  ", 1) if rng.random() < 0.1 else variant


def answer(rng: random.Random, at: str) -> dict:
    """A reply: mostly the model's with timings and usage, some scripted or fallback, some rated."""
    source = rng.choices(("model", "scripted", "fallback"), (85, 12, 3))[0]
    extra: dict = {}
    if source == "model":
        prompt, completion = rng.randint(20, 2000), rng.randint(5, 800)
        extra = {
            "latency_ms": rng.randint(300, 8000),
            "first_token_ms": rng.randint(80, 1500),
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        if rng.random() < 0.03:
            extra["status"] = rng.choice(("stopped", "interrupted"))
    else:
        extra["source"] = source
    rating = rng.random()
    if rating < 0.15:
        extra["feedback"] = "up" if rating < 0.11 else "down"
    return make_message("assistant", data.REPLY, created_at=at, **extra)


def conversation(
    n: int, total: int, messages: int, rng: random.Random | None = None,
    text: Callable[[random.Random, int, int], str] | None = None,
) -> Conversation:
    """Conversation c<n>, started at an even spread over DAYS days, a message every ~40 s; `text`, when
    given, writes every message after the first question (the replies' too), from the same rng."""
    rng = rng or random.Random(n)
    start = int(n * DAYS * 86_400 / total)
    conv = Conversation(id=f"c{n:06d}", model="bench-model", created_at=data.stamp(start))
    question = spelling(rng.choice(QUESTIONS), rng)
    for k in range(messages):
        at = data.stamp(start + k * 40 + rng.randint(0, 20))
        if k % 2:
            reply = answer(rng, at)
            if text is not None:
                reply["content"] = text(rng, n, k)
            conv.add(reply)
        else:
            content = question if k == 0 else text(rng, n, k) if text is not None else data.text(n, k)
            conv.add(make_message("user", content, created_at=at))
    return conv


def fill(root: Path, conversations: int, messages: int) -> None:
    root.mkdir(parents=True)
    for n in range(conversations):
        conv = conversation(n, conversations, messages)
        (root / f"{conv.id}.json").write_bytes(encode(conv))
    data.build_index(root)  # as a deployment has one
