"""Time the JSON history store at scale: listing (warm, cold process) and the cost of saving a turn.

Run: .venv/bin/python -m bench.history_bench [--conversations 10000] [--messages 20]
Targets: warm list < 150 ms and cold list < 1 s at 10,000 conversations; append cost flat in N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from history import summary_cache
from history.json_store import JsonHistoryStore, encode
from history.models import Conversation, make_message

_COLD_LIST = """
import json, sys, time
started = time.perf_counter()
from history.json_store import JsonHistoryStore
imported = time.perf_counter()
store = JsonHistoryStore(sys.argv[1])
count = len(store.list())
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "list_s": done - imported, "count": count,
                  "parsed": store.last_scan.parsed, "index_loaded": store.last_scan.index_loaded}))
"""


def fill(root: Path, conversations: int, messages: int) -> None:
    """Write the files directly (no fsync per file): setting up is not what is measured."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(conversations):
        conversation = Conversation(id=f"c{n:06d}", model="bench-model")
        for k in range(messages):
            role = "user" if k % 2 == 0 else "assistant"
            conversation.add(make_message(role, f"Message {k} of conversation {n}: " + "lorem ipsum " * 15))
        (root / f"{conversation.id}.json").write_bytes(encode(conversation))


def timed(action, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def cold_list(root: Path) -> dict:
    """A new interpreter listing the folder, as after a restart of the app."""
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _COLD_LIST, str(root)], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output)
    result["process_s"] = time.perf_counter() - started
    return result


def append_cost(store: JsonHistoryStore, conversation_id: str, repeat: int) -> list[float]:
    message = make_message("user", "one more turn " * 20)
    return timed(lambda: store.append(conversation_id, message), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--appends", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the folders (default: temp)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="history-bench-", dir=args.dir))
    try:
        run(base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, args: argparse.Namespace) -> None:
    big, small = base / "big", base / "small"
    started = time.perf_counter()
    fill(big, args.conversations, args.messages)
    fill(small, 1, args.messages)
    size = sum(p.stat().st_size for p in big.glob("*.json")) / 2**20
    print(
        f"{args.conversations} conversations x {args.messages} messages ({size:.0f} MB) "
        f"written in {time.perf_counter() - started:.1f} s"
    )

    store = JsonHistoryStore(big)
    first = timed(store.list, 1)
    print(
        f"first list, no index (parses every file): {first[0] * 1000:7.0f} ms  "
        f"parsed={store.last_scan.parsed} index_saved={store.last_scan.index_saved}"
    )
    print(f"warm list (nothing changed):              {ms(timed(store.list, 20))}")

    for attempt in range(3):
        result = cold_list(big)
        print(
            f"cold list in a new process #{attempt + 1}:        list {result['list_s'] * 1000:6.0f} ms, "
            f"imports {result['import_s'] * 1000:4.0f} ms, process {result['process_s'] * 1000:5.0f} ms "
            f"(parsed={result['parsed']}, index_loaded={result['index_loaded']})"
        )

    small_store = JsonHistoryStore(small)
    small_store.list()
    print(
        f"append at 1 conversation:                 {ms(append_cost(small_store, 'c000000', args.appends))}"
    )
    print(
        f"append at {args.conversations} conversations:{' ' * (22 - len(str(args.conversations)))}"
        f"{ms(append_cost(store, 'c000123', args.appends))}"
    )

    def turn() -> None:
        store.append("c000456", make_message("user", "a turn"))
        store.list()

    print(f"append + list at {args.conversations} (a UI rerun):     {ms(timed(turn, args.appends))}")
    summary_cache.SAVE_INTERVAL = 0.0  # force the index rewrite the throttle normally spreads out
    print(f"append + list + index rewrite:            {ms(timed(turn, 10))}")


if __name__ == "__main__":
    main()
