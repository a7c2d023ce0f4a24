"""Synthetic history folders for the benchmarks, written fast but shaped like a real deployment's."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from history.models import Conversation, make_message
from history.stores import folder_index
from history.stores.json_store import JsonHistoryStore, encode

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
ROLES = ("user", "assistant")
REPLY = (
    "Here is what I found:\n\n- **First**, the short answer in one line.\n- **Second**, a detail "
    "with `code` in it.\n\nAnd a closing sentence that wraps the reply up for the reader."
)


def stamp(seconds: int) -> str:
    """A schema timestamp `seconds` after a fixed start, so every run sorts the same way."""
    moment = BASE_TIME + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def text(n: int, k: int) -> str:
    """About 200 characters, the size of a short chat message."""
    return f"Message {k} of conversation {n}: " + "lorem ipsum " * 15


def conversation(n: int, messages: int, content=text) -> Conversation:
    """Conversation c<n> with `messages` alternating messages; later n are more recent."""
    conv = Conversation(id=f"c{n:06d}", model="bench-model", created_at=stamp(n * 60))
    for k in range(messages):
        conv.add(make_message(ROLES[k % 2], content(n, k), created_at=stamp(n * 60 + k)))
    return conv


def fill(root: Path, conversations: int, messages: int) -> float:
    """Write the files without fsync, then count once to build the folder's index as a deployment has.

    Returns that first count's seconds: it parses every file, which is what building the index from
    nothing costs.
    """
    root.mkdir(parents=True)
    for n in range(conversations):
        conv = conversation(n, messages)
        (root / f"{conv.id}.json").write_bytes(encode(conv))
    return build_index(root)


def build_index(root: Path) -> float:
    """Seconds to build the folder's index as a new process would; the process forgets it after."""
    folder_index.forget_all()
    store = JsonHistoryStore(root)
    started = time.perf_counter()
    store.count()
    elapsed = time.perf_counter() - started
    if not store.last_scan.rebuilt or store.last_scan.in_memory:
        raise RuntimeError(f"the first count of {root} did not write {folder_index.INDEX_NAME}")
    folder_index.forget_all()  # what follows starts as a new process would
    return elapsed


def fill_flask(path: Path, conversations: int, messages: int) -> None:
    """The Flask MVP's design: every message of every conversation in one JSON list."""
    rows = [
        {"role": ROLES[k % 2], "content": text(n, k)} for n in range(conversations) for k in range(messages)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as sink:
        json.dump(rows, sink)


def flask_save(path: Path, *messages: dict) -> None:
    """How the Flask MVP saved: load the whole file, append, rewrite it whole."""
    with path.open(encoding="utf-8") as source:
        history = json.load(source)
    history.extend(messages)
    with path.open("w", encoding="utf-8") as sink:
        json.dump(history, sink)


def flask_load(path: Path) -> list:
    """How the Flask MVP started a session: read the whole file."""
    with path.open(encoding="utf-8") as source:
        return json.load(source)


def folder_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.glob("*.json")) / 2**20
