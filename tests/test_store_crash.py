"""Crash safety: a writer killed with SIGKILL at random moments never loses an acknowledged turn.

On every store: the JSON folder (atomic renames), SQLite (its journal) and PostgreSQL (a killed
client's transaction is rolled back). The child process is started with `python -c` (a spawn: a
fresh interpreter, nothing inherited) and imports only this module, which therefore imports no test
libraries at module level.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from history.models import Conversation, make_message
from history.stores import atomic, folder_index, json_store
from history.stores.backend import open_store
from history.stores.sql_schema import is_database_url

ROUNDS = 24
SEED = 20240611
DELAY_MS = (5, 150)
NEW_CONVERSATION_RATE = 0.2
PADDING = "x" * 16_000  # big files make a torn write likely to be caught if saves were not atomic
READY_TIMEOUT = 20.0
REPO = Path(__file__).resolve().parents[1]
CHILD = "import sys; from tests.test_store_crash import write_until_killed; write_until_killed(*sys.argv[1:])"


def turn_text(conversation_id: str, seq: int) -> str:
    """Content that names its conversation and position, so loss and reordering are visible."""
    return f"{conversation_id}#{seq}|{PADDING}"


def write_until_killed(target: str, log: str, seed: str) -> None:
    """Child: create conversations and append turns forever, logging each save after it returned."""
    rng = random.Random(int(seed))
    store = open_store(target)
    counts = {s.id: s.message_count for s in store.list()}  # continues where the last child died
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    print("ready", flush=True)
    for serial in range(10**9):
        if not counts or rng.random() < NEW_CONVERSATION_RATE:
            conversation_id, seq = f"r{seed}-{serial}", 0
            first = make_message("user", turn_text(conversation_id, 0))
            store.create(Conversation(id=conversation_id, messages=[first]))
            counts[conversation_id] = 1
        else:
            conversation_id = rng.choice(sorted(counts))
            seq = counts[conversation_id]
            saved = store.append(conversation_id, make_message("assistant", turn_text(conversation_id, seq)))
            counts[conversation_id] = len(saved.messages)
        os.write(fd, f"{conversation_id} {seq}\n".encode())
        os.fsync(fd)


def run_and_kill(target: str, log: Path, seed: int, delay: float) -> None:
    """Start a writer, let it save for `delay` seconds after it is ready, then SIGKILL it."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, target, str(log), str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n", "the writer failed to start"
        time.sleep(delay)
        assert child.poll() is None, f"the writer stopped by itself (exit {child.returncode})"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=READY_TIMEOUT)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def acknowledged(log: Path) -> dict[str, list[int]]:
    """Turns the writers logged as saved, per conversation, in logging order."""
    acks: dict[str, list[int]] = {}
    for line in log.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n"):  # a line cut by the kill was never fully acknowledged
            conversation_id, seq = line.split()
            acks.setdefault(conversation_id, []).append(int(seq))
    return acks


def assert_intact(target: str, acks: dict[str, list[int]]) -> None:
    """Every file parses, every conversation holds whole turns in order, every ack is there."""
    if not is_database_url(target):
        for path in Path(target).iterdir():
            if path.suffix == ".json" and not path.name.startswith("."):
                json.loads(path.read_bytes())
    folder_index.forget_all()  # look at the store as a newly started app would
    store = open_store(target)
    listed = {s.id for s in store.list()}
    assert store.unreadable() == []
    assert acks.keys() <= listed
    for conversation_id in listed:
        contents = [m["content"] for m in store.get(conversation_id).messages]
        assert contents == [turn_text(conversation_id, n) for n in range(len(contents))], conversation_id
    for conversation_id, seqs in acks.items():
        assert seqs == sorted(set(seqs)), f"{conversation_id}: a turn was acknowledged twice or out of order"
        assert seqs[-1] < len(store.get(conversation_id).messages), f"{conversation_id}: lost turn {seqs[-1]}"


def test_sigkilled_writers_never_lose_an_acknowledged_turn(backend, tmp_path, monkeypatch):
    root, log = backend.target, tmp_path / "acks.log"
    rng = random.Random(SEED)
    for seed in range(ROUNDS):
        run_and_kill(root, log, seed, rng.uniform(*DELAY_MS) / 1000)
        assert_intact(root, acknowledged(log))

    acks = acknowledged(log)
    assert sum(map(len, acks.values())) >= ROUNDS // 2, "the writers saved too little to test anything"
    # A killed writer's locks died with it: every conversation takes a new turn at once.
    monkeypatch.setattr(json_store, "exclusive", functools.partial(atomic.exclusive, timeout=30))
    store = open_store(root)
    for summary in store.list():
        store.append(summary.id, make_message("user", turn_text(summary.id, summary.message_count)))
    assert_intact(root, acks)
