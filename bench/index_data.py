"""One synthetic JSON folder for the index benchmark, generated once per seed and kept for later runs.

Conversations are shaped for all three things measured on them: Zipf-distributed words to search
(bench/search_data.py's vocabulary), the timed, rated and scripted replies Insights counts over 90
days (bench/insights_data.py), and 20 messages each. Files are written with the store's encoder but
without fsync (minutes saved); every conversation depends only on (seed, n, total), so a folder
can be checked, restored and regenerated exactly.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import sys
import time
from pathlib import Path

from bench import insights_data
from bench.search_data import VOCABULARY, WEIGHTS
from history.models import Conversation
from history.stores.json_store import encode

SEED = 20261203
CACHE = Path("/tmp/bench-data")
_CUMULATIVE = list(itertools.accumulate(WEIGHTS))
# The three queries, picked by rank in the Zipf vocabulary so their hit counts are known in advance.
WORD = VOCABULARY[200]  # about 3 in 10 conversations
PHRASE = f'"{VOCABULARY[10]} {VOCABULARY[20]}"'  # two fairly common words side by side: a few percent
THREE = f"{VOCABULARY[5]} {VOCABULARY[30]} {VOCABULARY[100]}"  # all three, in any order: about half
QUERIES = {"one word": WORD, "quoted phrase": PHRASE, "three words": THREE}


def words(rng: random.Random, k: int = 28) -> str:
    """About 200 characters of Zipf-distributed words, like bench/search_data.py's messages."""
    chosen = rng.choices(VOCABULARY, cum_weights=_CUMULATIVE, k=k)
    return chosen[0].capitalize() + " " + " ".join(chosen[1:]) + "."


def conversation(n: int, total: int, messages: int = 20, seed: int = SEED) -> Conversation:
    """Conversation c<n>: a first question from a short list, then searchable words; replies with details."""
    rng = random.Random(seed * 10_000_019 + n)
    return insights_data.conversation(n, total, messages, rng, text=lambda rng, _n, _k: words(rng))


def folder(total: int, messages: int = 20, seed: int = SEED, label: str = "") -> Path:
    """The cached folder of `total` conversations (generated now if missing or incomplete)."""
    root = CACHE / f"json-{total}x{messages}-seed{seed}{label}"
    done = root / ".generated"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    started = time.perf_counter()
    for n in range(total):
        write(root, n, total, messages, seed)
        if n and n % 20_000 == 0:
            print(f"  {n:,} of {total:,} files written", file=sys.stderr, flush=True)
    done.write_text(f"seed={seed} total={total} messages={messages}\n", encoding="utf-8")
    print(
        f"{root}: {total:,} conversations generated in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return root


def mirror(root: Path) -> Path:
    """A folder beside root holding hard links to its conversation files, for the previous design: the
    new one deletes the caches the old one keeps beside the files, so each needs a folder of its own."""
    copy = root.with_name(root.name + "-old")
    done = copy / ".generated"
    if done.exists():
        return copy
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir()
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                os.link(entry.path, copy / entry.name)
    done.touch()
    return copy


def write(root: Path, n: int, total: int, messages: int = 20, seed: int = SEED) -> None:
    """(Re)write conversation n as generated, e.g. to undo the appends of a previous run."""
    conv = conversation(n, total, messages, seed)
    path = root / f"{conv.id}.json"
    path.unlink(missing_ok=True)  # a new file: never through a hard link into the other design's folder
    path.write_bytes(encode(conv))


def megabytes(root: Path) -> float:
    with os.scandir(root) as entries:
        return sum(e.stat().st_size for e in entries if e.name.endswith(".json") and e.name[0] != ".") / 2**20
