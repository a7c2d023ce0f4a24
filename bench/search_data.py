"""Synthetic history for the search benchmark: Zipf-distributed words, from rare to everywhere."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench import history_data as data
from history.search import query_terms
from history.stores.json_store import encode

VOCABULARY = [
    f"{a}{b}{c}"
    for a in ("ka", "lo", "mi", "ne", "su", "ta", "vo", "ze")
    for b in ("bar", "cel", "dor", "fin", "gam", "hol", "lis", "mur", "nop", "rak")
    for c in ("a", "e", "i", "o", "u", "an", "el", "is", "on", "ur", "ax", "em", "ot", "ys", "ul")
]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf: a few words are everywhere


def queries(size: int) -> list[tuple[str, str]]:
    """From nothing found (every text scanned to the end) to every conversation found (a snippet each)."""
    return [
        ("no match", "quizzical-zebra"),
        ("one conversation", f"TICKET-{size // 2:05d}"),
        ("rare word", VOCABULARY[-1]),
        ("two words (AND)", f"{VOCABULARY[40]} {VOCABULARY[90]}"),
        ("common word, many hits", VOCABULARY[0].upper()),
    ]


def content(n: int, k: int) -> str:
    """About 200 characters of Zipf-distributed words; the first message names a unique ticket."""
    rng = random.Random(n * 1_000 + k)
    words = rng.choices(VOCABULARY, WEIGHTS, k=28)
    words[0] = words[0].capitalize()
    prefix = f"Ticket-{n:05d}: " if k == 0 else ""
    return prefix + " ".join(words) + "."


def fill(root: Path, conversations: int, messages: int) -> None:
    """Write the folder without fsync, then build its index once, as a deployment has one."""
    root.mkdir(parents=True)
    for n in range(conversations):
        conv = data.conversation(n, messages, content=content)
        (root / f"{conv.id}.json").write_bytes(encode(conv))
    data.build_index(root)


def naive_search(root: Path, query: str) -> list[str]:
    """The baseline: parse every file on every query, lowercase it, test each word, sort by time."""
    terms = query_terms(query)
    hits = []
    for path in root.glob("[!.]*.json"):
        conversation = json.loads(path.read_bytes())
        text = " ".join([conversation["title"], *(m["content"] for m in conversation["messages"])]).lower()
        if all(term in text for term in terms):
            hits.append((conversation["updated_at"], conversation["id"]))
    return [cid for _, cid in sorted(hits, reverse=True)]
