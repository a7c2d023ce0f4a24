"""Concurrency: threads and processes writing one store at the same time lose nothing, reorder nothing.

On every store: the JSON folder (file locks), SQLite (BEGIN IMMEDIATE) and PostgreSQL (row locks).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading

import pytest

from history.models import Conversation, make_message
from history.stores import folder_index
from history.stores.backend import open_store
from history.stores.base import HistoryStore

THREADS, PROCESSES = 8, 4
WRITERS = THREADS + PROCESSES
TURNS = 15  # per writer and conversation
GROUPS = 3  # conversations each shared by WRITERS // GROUPS writers
UPDATE_EVERY = 5
SHARED, RACE = "shared", "race"


def text(writer: int, seq: int) -> str:
    """Writer id and sequence number: enough to check loss and each writer's order."""
    return f"{writer}:{seq}"


def write(target: str, writer: int, start) -> None:
    """One session: race to create, then interleave appends to shared, group and own conversations."""
    store = open_store(target)
    start.wait()
    with contextlib.suppress(FileExistsError):  # another writer won; exactly one may
        store.create(Conversation(id=RACE))
    store.append(RACE, make_message("user", text(writer, 0)))  # whoever created it, nobody's turn is lost
    store.create(Conversation(id=f"own-{writer}"))
    for seq in range(TURNS):
        store.append(SHARED, make_message("user", text(writer, seq)))
        store.append(f"group-{writer % GROUPS}", make_message("assistant", text(writer, seq)))
        store.append(f"own-{writer}", make_message("user", text(writer, seq)))
        if seq % UPDATE_EVERY == 0:  # a settings change must not drop turns saved meanwhile
            store.update(SHARED, **{f"writer_{writer}": seq})


def _thread(target: str, writer: int, start, errors: list[BaseException]) -> None:
    """Thread body: errors go to the main thread, which asserts none happened."""
    try:
        write(target, writer, start)
    except BaseException as error:  # noqa: BLE001 - reported by the test, not swallowed
        errors.append(error)


def contents(store: HistoryStore, conversation_id: str) -> list[str]:
    return [m["content"] for m in store.get(conversation_id).messages]


def assert_every_writer_in_order(saved: list[str], writers: list[int], turns: int = TURNS) -> None:
    """No turn lost or duplicated, and each writer's turns in the order it wrote them."""
    assert len(saved) == len(writers) * turns
    for writer in writers:
        mine = [c for c in saved if c.split(":")[0] == str(writer)]
        assert mine == [text(writer, seq) for seq in range(turns)], f"writer {writer}"


@pytest.mark.timeout(180)
def test_threads_and_processes_writing_at_once_lose_nothing(backend):
    root = backend.target
    setup = open_store(root)
    for conversation_id in [SHARED, *(f"group-{g}" for g in range(GROUPS))]:
        setup.create(Conversation(id=conversation_id))

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS)  # threads and processes begin together
    errors: list[BaseException] = []
    processes = [
        context.Process(target=write, args=(root, writer, start)) for writer in range(THREADS, WRITERS)
    ]
    threads = [
        threading.Thread(target=_thread, args=(root, writer, start, errors)) for writer in range(THREADS)
    ]
    for worker in [*processes, *threads]:
        worker.start()
    for thread in threads:
        thread.join(timeout=100)
    for process in processes:
        process.join(timeout=100)
    assert errors == []
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    folder_index.forget_all()  # judge the store as a fresh process would
    store = open_store(root)
    everyone = list(range(WRITERS))
    assert_every_writer_in_order(contents(store, SHARED), everyone)
    assert_every_writer_in_order(contents(store, RACE), everyone, turns=1)
    for group in range(GROUPS):
        assert_every_writer_in_order(contents(store, f"group-{group}"), everyone[group::GROUPS])
    for writer in everyone:
        assert contents(store, f"own-{writer}") == [text(writer, seq) for seq in range(TURNS)]
    last_update = max(range(0, TURNS, UPDATE_EVERY))
    assert store.get(SHARED).extra == {f"writer_{w}": last_update for w in everyone}
    assert store.unreadable() == [] and store.count() == 1 + 1 + GROUPS + WRITERS
