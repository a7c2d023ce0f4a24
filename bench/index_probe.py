"""What bench/index_bench.py times, run in a process of its own on either design's code.

Run: python -P bench/index_probe.py DESIGN ROOT COMMAND [ARGS], with cwd and PYTHONPATH at the
checkout whose `history` package is to be measured: "new" (this one: the folder's SQLite index) or
"old" (ff6a7b1: .index.json, .search-index and .insights-index). ROOT is a folder, or for "new" also
a database URL (bench/index_sql_bench.py). Prints one JSON object. Imports only
the standard library and `history`, so the same file drives both checkouts, and every operation of
the two designs is written side by side below.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
DESIGN, ROOT, COMMAND, *ARGS = sys.argv[1:]

from history import insights  # noqa: E402
from history.listing import conversations_table  # noqa: E402
from history.models import make_message  # noqa: E402
from history.stores.json_store import JsonHistoryStore  # noqa: E402

if DESIGN == "new":
    from history.search import search_table
    from history.stores import folder_index
    from history.stores.backend import open_store

    INDEX_FILES = [folder_index.INDEX_NAME + suffix for suffix in ("", "-wal", "-shm")]
else:
    from history import insights_cache, search_index, summary_cache
    from history.search import forget_recent_queries, search, search_table

    INDEX_FILES = [summary_cache.INDEX_NAME, search_index.INDEX_NAME, insights_cache.INDEX_NAME]
IMPORTED = time.perf_counter()
WARM_INSIGHTS = 3  # warm Insights has no target and takes seconds a call at 100,000: fewer runs
USER_TEXT = "Could you explain that last point again, with an example? " * 3


def session(store: JsonHistoryStore) -> str:
    """A new browser session: find the newest conversation and open it."""
    newest = store.latest().id if DESIGN == "new" else store.list()[0].id
    return f"opened {newest} ({len(store.get(newest).messages)} messages)"


def first_page(store: JsonHistoryStore) -> str:
    """The History table as first shown: a page of 100 now, every conversation before."""
    table = conversations_table(store.page(100) if DESIGN == "new" else store.list())
    return f"{len(table):,} rows"


def find(store: JsonHistoryStore, query: str) -> str:
    """The History table's search: the first 100 by relevance now, every hit newest first before."""
    if DESIGN == "new":
        table = search_table(store.search(query, 100))
    else:
        forget_recent_queries()  # remembered results would make it a rerun, not a new query
        table = search_table(store, query)
    return f"{len(table):,} rows"


def rows(store: JsonHistoryStore):
    """The Insights page's message frame."""
    if DESIGN == "new":
        return store.insight_rows()
    return insights_cache.insight_rows(store)


def figures(frame) -> None:
    """What app_pages/insights.py draws from the frame, over its whole date range."""
    frame = insights.between(frame, None, None)
    insights.headline(frame)
    insights.bucket_size(frame)
    insights.daily_activity(frame)
    insights.reply_times(frame)
    insights.feedback_by_day(frame)
    insights.answer_sources(frame)
    insights.top_first_questions(frame)


def page_data(store: JsonHistoryStore) -> str:
    """The Insights page's data: the store's SQL aggregates now, the frame and its figures before."""
    if DESIGN == "new":
        return f"{store.insights().messages:,} messages"
    frame = rows(store)
    figures(frame)
    return f"{len(frame):,} messages"


def forget() -> None:
    """Drop what this process holds, as a new process starts (files stay in the OS cache)."""
    if DESIGN == "new":
        folder_index.forget_all()
    else:
        summary_cache.forget_all()
        search_index.forget_all()
        insights_cache.forget_all()
        forget_recent_queries()


def opened(target: str) -> JsonHistoryStore:
    """The store at a folder, or (new design) at a database URL."""
    return open_store(target) if DESIGN == "new" else JsonHistoryStore(target)


def scan(store: JsonHistoryStore) -> dict:
    """How many files the last pass parsed, and whether an index was built anew (a database: none)."""
    if not isinstance(store, JsonHistoryStore):
        return {"parsed": 0, "rebuilt": False, "in_memory": False}
    if DESIGN == "new":
        stats = store.last_scan
        return {"parsed": stats.parsed, "rebuilt": stats.rebuilt, "in_memory": stats.in_memory,
                "background": stats.background}
    stats = summary_cache.cache_for(store.root).stats
    return {"parsed": stats.parsed, "rebuilt": not stats.index_loaded, "in_memory": False}


def operation(name: str, arg: str | None):
    if name == "search":
        return lambda store: find(store, arg)
    if name == "insights":
        return page_data
    return {"session": session, "page": first_page}[name]


def timed(action, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - started, result


def cold(name: str, arg: str | None = None) -> dict:
    """The first `name` in this process, with the index files present."""
    store = opened(ROOT)
    seconds, what = timed(operation(name, arg), store)
    return {"work_s": seconds, "what": what, **scan(store)}


def cold_insights() -> dict:
    """The Insights page in this process: its frame, then its figures."""
    store = opened(ROOT)
    if DESIGN == "new":  # the page draws store.insights(): nothing is left to compute on a frame
        seconds, result = timed(store.insights)
        return {"work_s": seconds, "rows_s": seconds, "figures_s": 0.0,
                "what": f"{result.messages:,} messages", **scan(store)}
    seconds, frame = timed(rows, store)
    figured, _ = timed(figures, frame)
    return {
        "work_s": seconds + figured,
        "rows_s": seconds,
        "figures_s": figured,
        "what": f"{len(frame):,} rows",
        **scan(store),
    }


def warm(repeat: str, queries: str) -> dict:
    """Each operation again in a process that has done it once (a running server): seconds per call."""
    store = opened(ROOT)
    ops = {
        "session": operation("session", None),
        "page": operation("page", None),
        "insights": page_data,
    }
    ops |= {f"search:{label}": operation("search", query) for label, query in json.loads(queries).items()}
    samples, what = {}, {}
    for key, action in ops.items():
        what[key] = str(action(store))
        runs = min(int(repeat), WARM_INSIGHTS) if key == "insights" else int(repeat)
        samples[key] = [timed(action, store)[0] for _ in range(runs)]
    return {"samples": samples, "what": what}


def rebuild(query: str) -> dict:
    """From no index files: what rebuilds them (new: count(); old: list, search and insights once)."""
    for name in INDEX_FILES:
        Path(ROOT, name).unlink(missing_ok=True)
    forget()
    store = opened(ROOT)
    parts = {}
    if DESIGN == "new":
        parts["count"], total = timed(store.count)
    else:
        parts["list"], listed = timed(store.list)
        parts["search"], _ = timed(search, store, query)
        parts["insights"], _ = timed(rows, store)
        total = len(listed)
    missing = [name for name in INDEX_FILES[: 1 if DESIGN == "new" else 3] if not Path(ROOT, name).exists()]
    if missing:
        raise RuntimeError(f"the rebuild left no {missing}")
    size = sum(Path(ROOT, name).stat().st_size for name in INDEX_FILES if Path(ROOT, name).exists())
    return {
        "parts": parts,
        "work_s": sum(parts.values()),
        "conversations": total,
        "index_mb": size / 2**20,
        **scan(store),
    }


def save(repeat: str, *targets: str) -> dict:
    """Append one message to ROOT:CID in each folder, folders taking turns save by save."""
    stores = {}
    for target in targets:
        root, cid = target.rsplit(":", 1)
        store = opened(root)
        store.count() if DESIGN == "new" else store.list()  # a running server's index is loaded
        stores[target] = (store, cid)
    samples: dict[str, list[float]] = {target: [] for target in targets}
    for _ in range(int(repeat)):
        for target, (store, cid) in stores.items():
            started = time.perf_counter()
            if store.exists(cid):  # what ChatService.add_user_message does for a saved conversation
                store.append(cid, make_message("user", USER_TEXT))
            samples[target].append(time.perf_counter() - started)
    return {"samples": samples}


def main() -> None:
    if not Path(sys.modules["history"].__file__).is_relative_to(Path.cwd()):
        raise RuntimeError(f"`history` came from {sys.modules['history'].__file__}, not {Path.cwd()}")
    commands = {"cold": cold, "insights": cold_insights, "warm": warm, "rebuild": rebuild, "save": save}
    result = commands[COMMAND](*ARGS)
    result["imports_s"] = IMPORTED - STARTED
    result["pid"] = os.getpid()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
