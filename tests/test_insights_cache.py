"""The Insights index file: a new process reads only what changed; a bad index is rebuilt, never trusted.
In a database (SQLite, PostgreSQL): only conversations whose revision changed are read again, in bulk."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from history import index_file, insights_cache, search_index, summary_cache
from history.insights import headline, messages_frame
from history.insights_cache import (
    INDEX_MAGIC,
    INDEX_NAME,
    cache_for,
    database_cache_for,
    decode_index,
    encode_index,
    insight_rows,
)
from history.search import search
from history.stores.base import HistoryStore
from history.stores.json_store import JsonHistoryStore, read_file
from history.stores.sql_store import SqlHistoryStore
from tests.test_insights import HISTORY, save, saved_history, user


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return saved_history(tmp_path / "conversations")


@pytest.fixture
def save_at_once(monkeypatch):
    """Every load that changed anything rewrites the index, as a large one does."""
    monkeypatch.setattr(insights_cache, "SAVE_AFTER_CHANGES", 1)


def restart() -> None:
    """What a new server process has in memory: nothing."""
    summary_cache.forget_all()
    insights_cache.forget_all()


def from_scratch(store: JsonHistoryStore) -> pd.DataFrame:
    """The frame built from every file without any cache, to compare the cached one with."""
    return messages_frame(read_file(path)[0] for path in sorted(store.root.glob("[!.]*.json")))


def same_rows(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal rows and types, whatever the row order and the order of the id categories."""

    def ordered(f: pd.DataFrame) -> pd.DataFrame:
        f = f.assign(conversation_id=f["conversation_id"].astype(str))
        return f.sort_values(list(f.columns[:3]), kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(frame), ordered(expected))
    assert frame["conversation_id"].dtype == "category"
    assert headline(frame) == headline(expected)


def test_a_new_process_loads_the_index_and_parses_nothing(store, save_at_once):
    first = insight_rows(store)
    assert cache_for(store.root).stats.index_saved
    assert (store.root / INDEX_NAME).read_bytes().startswith(INDEX_MAGIC)
    restart()

    again = insight_rows(store)

    stats = cache_for(store.root).stats
    assert stats.index_loaded and stats.parsed == 0 and stats.names == []
    assert stats.files == 4 and not stats.index_saved  # nothing changed, nothing to write
    assert again.equals(first) and (again.dtypes == first.dtypes).all()
    assert headline(again)["median_latency_ms"] == 2500.0


def test_after_a_restart_only_changed_new_and_deleted_files_count(store, save_at_once):
    insight_rows(store)
    restart()  # the server is down while the folder changes
    store.append("a", user("Thanks!", "2026-03-03T09:00:00.000Z"))
    save(store, "e", [user("New here", "2026-03-03T10:00:00.000Z")])
    store.delete("b")
    path = store.path_for("c")  # edited in place: same inode and size, only the mtime says so
    edited = path.read_bytes().replace(b'"feedback": "down"', b'"feedback": null  ')
    assert len(edited) == path.stat().st_size and edited != path.read_bytes()
    path.write_bytes(edited)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    frame = insight_rows(store)

    stats = cache_for(store.root).stats
    assert stats.index_loaded
    assert stats.names == ["a.json", "c.json", "e.json"]
    assert (stats.files, stats.parsed, stats.removed) == (4, 3, 1)
    same_rows(frame, from_scratch(store))
    assert frame["conversation_id"].value_counts().to_dict() == {"a": 5, "c": 6, "d": 2, "e": 1}
    assert headline(frame)["thumbs_up_share"] == 3 / 4  # c's "down" is no rating any more

    restart()  # what that load saved is what the next process starts from
    assert insight_rows(store).equals(frame)
    assert cache_for(store.root).stats.parsed == 0


def test_saving_is_throttled_like_the_search_index(store, monkeypatch):
    insight_rows(store)
    assert not cache_for(store.root).stats.index_saved  # 4 files: fewer than SAVE_AFTER_CHANGES
    assert not (store.root / INDEX_NAME).exists()
    monkeypatch.setattr(insights_cache, "SAVE_INTERVAL", 0.0)
    insight_rows(store)
    assert cache_for(store.root).stats.index_saved  # unsaved changes, and the interval has passed
    insight_rows(store)
    assert not cache_for(store.root).stats.index_saved  # nothing new to write
    store.append("a", user("Thanks!", "2026-03-03T09:00:00.000Z"))
    insight_rows(store)
    assert cache_for(store.root).stats.index_saved


def _damaged(raw: bytes) -> dict[str, bytes]:
    middle = len(raw) // 2
    return {
        "truncated by a few bytes": raw[:-5],
        "truncated to its header": raw[: len(INDEX_MAGIC) + 40],
        "a flipped byte in the rows": raw[:middle] + bytes([raw[middle] ^ 0x10]) + raw[middle + 1 :],
        "empty": b"",
        "garbage": os.urandom(len(raw)),
        "another version": raw.replace(b"index 1\n", b"index 2\n", 1),
    }


@pytest.mark.parametrize("damage", list(_damaged(b"x" * 200)))
def test_a_damaged_index_is_ignored_and_rebuilt_with_the_right_numbers(store, save_at_once, damage):
    expected = insight_rows(store)
    index = store.root / INDEX_NAME
    index.write_bytes(_damaged(index.read_bytes())[damage])
    restart()

    frame = insight_rows(store)

    stats = cache_for(store.root).stats
    assert not stats.index_loaded and stats.parsed == 4
    same_rows(frame, expected)
    assert stats.index_saved  # rebuilt: the next process loads it again
    restart()
    assert insight_rows(store).equals(frame) and cache_for(store.root).stats.index_loaded


def test_an_index_that_is_whole_but_does_not_fit_is_not_trusted(store, save_at_once, monkeypatch):
    """A correct digest is not enough: rows of a file it has no key for, or from other code, are refused."""
    frame = insight_rows(store)
    raw = (store.root / INDEX_NAME).read_bytes()
    keys, _ = decode_index(raw)
    del keys["a.json"]
    with pytest.raises(ValueError, match="does not list"):
        decode_index(encode_index(keys, frame))
    monkeypatch.setattr(insights_cache, "_CODE_VERSION", "another insights.py")
    with pytest.raises(ValueError, match="another version"):
        decode_index(raw)
    restart()
    assert headline(insight_rows(store)) == headline(frame)
    assert not cache_for(store.root).stats.index_loaded


def test_a_link_or_folder_in_place_of_the_index_is_not_followed(store, save_at_once, tmp_path):
    expected = insight_rows(store)
    index = store.root / INDEX_NAME
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(index.read_bytes())
    index.unlink()
    index.symlink_to(elsewhere)
    restart()
    same_rows(insight_rows(store), expected)
    assert not cache_for(store.root).stats.index_loaded
    assert not cache_for(store.root).stats.index_saved  # write_atomic refuses to replace a link
    assert index.is_symlink()


def test_a_folder_that_cannot_be_written_still_has_insights(store, save_at_once, monkeypatch):
    def refuse(path, data):
        raise PermissionError(13, "read-only", str(path))

    monkeypatch.setattr(index_file, "write_atomic", refuse)
    frame = insight_rows(store)
    assert not cache_for(store.root).stats.index_saved
    same_rows(frame, from_scratch(store))


def test_the_index_file_is_neither_a_conversation_nor_an_unreadable_file(store, save_at_once, monkeypatch):
    monkeypatch.setattr(search_index, "SAVE_AFTER_CHANGES", 1)
    insight_rows(store)
    search(store, "python")  # the search index lives next to it
    (store.root / ".insights-index.123.tmp").write_bytes(b"left by a crash")
    restart()
    names = sorted(summary.id for summary in store.list())
    assert names == sorted(HISTORY)
    assert store.unreadable() == []
    assert {".insights-index", ".search-index", ".index.json"} <= {p.name for p in store.root.iterdir()}
    (store.root / INDEX_NAME).write_bytes(b"damaged")
    restart()
    assert sorted(summary.id for summary in store.list()) == names and store.unreadable() == []
    assert len(insight_rows(store)) == 14


def test_sessions_of_a_new_process_share_one_load(store, save_at_once):
    insight_rows(store)
    restart()
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(lambda _: len(insight_rows(JsonHistoryStore(store.root))), range(16)))
    assert sizes == [14] * 16
    assert cache_for(store.root).stats.parsed == 0


# A database: each conversation is known by its revision; changed ones are read with get_many().


@pytest.fixture
def db_store(sql_backend) -> HistoryStore:
    store = sql_backend.store()
    for cid, messages in HISTORY.items():
        save(store, cid, messages)
    return store


def reads(store: HistoryStore) -> list[list[str]]:
    """The ids of each get_many() call on this store object, as they happen; get() fails the test."""
    calls: list[list[str]] = []
    get_many = store.get_many

    def recording(ids):
        calls.append(list(ids))
        return get_many(calls[-1])

    def no_get(conversation_id):
        raise AssertionError(f"get({conversation_id!r}): the cache reads in bulk")

    store.get_many, store.get = recording, no_get
    return calls


def db_from_scratch(store: HistoryStore) -> pd.DataFrame:
    return messages_frame(store.get(summary.id) for summary in store.list())


def test_a_database_rereads_only_changed_conversations(sql_backend, db_store):
    calls = reads(db_store)
    first = insight_rows(db_store)
    cache = database_cache_for(db_store.cache_key)
    assert calls == [["a", "b", "c", "d"]] and cache.stats.parsed == 4
    same_rows(first, db_from_scratch(sql_backend.store()))

    other = sql_backend.store()  # another session's store object: the same cache
    assert insight_rows(other).equals(first)
    assert cache.stats.parsed == 0 and calls == [["a", "b", "c", "d"]]

    writer = sql_backend.store()
    writer.append("a", user("Thanks!", "2026-03-03T09:00:00.000Z"))
    save(writer, "e", [user("New here", "2026-03-03T10:00:00.000Z")])
    writer.delete("b")
    c_down = writer.get("c").messages[5]
    writer.update_message("c", 5, c_down["created_at"], feedback=None)  # the same count, one rating less
    calls.clear()

    frame = insight_rows(db_store)

    assert calls == [["a", "c", "e"]]
    assert (cache.stats.names, cache.stats.files, cache.stats.removed) == (["a", "c", "e"], 4, 1)
    same_rows(frame, db_from_scratch(writer))
    assert frame["conversation_id"].value_counts().to_dict() == {"a": 5, "c": 6, "d": 2, "e": 1}
    assert headline(frame)["thumbs_up_share"] == 3 / 4

    writer.restore("b")
    writer.update("d", title="Renamed")  # a new revision: read again, with the same rows
    calls.clear()
    frame = insight_rows(db_store)
    assert calls == [["b", "d"]] and cache.stats.removed == 0
    same_rows(frame, db_from_scratch(writer))
    assert len(frame) == 16


def test_a_change_between_revisions_and_the_read_is_read_again(sql_backend, db_store):
    """The revision is taken before the rows, so a change landing in between is never missed."""
    writer = sql_backend.store()
    get_many = db_store.get_many

    def change_first(ids):
        writer.append("a", user("Sent meanwhile", "2026-03-03T09:00:00.000Z"))
        return get_many(ids)

    db_store.get_many = change_first
    insight_rows(db_store)  # revisions() saw a's old revision, get_many() its new rows
    db_store.get_many = get_many

    frame = insight_rows(db_store)

    assert database_cache_for(db_store.cache_key).stats.names == ["a"]
    same_rows(frame, db_from_scratch(writer))
    assert insight_rows(db_store).equals(frame)
    assert database_cache_for(db_store.cache_key).stats.parsed == 0


def test_each_owner_in_a_database_has_its_own_frame(sql_backend, db_store):
    assert len(insight_rows(db_store)) == 14
    someone = sql_backend.store("users/someone")
    assert len(insight_rows(someone)) == 0
    save(someone, "a", [user("Mine only", "2026-03-05T10:00:00.000Z")])
    assert insight_rows(someone)["conversation_id"].tolist() == ["a"]
    assert len(insight_rows(db_store)) == 14
    assert database_cache_for(db_store.cache_key).stats.parsed == 0


def test_sessions_share_one_database_frame(sql_backend, db_store, monkeypatch):
    """Sixteen sessions load at once on a new process: the conversations are read once, not 16 times."""
    read: list[str] = []
    get_many = SqlHistoryStore.get_many

    def recording(self, ids):
        ids = list(ids)
        read.extend(ids)  # list.extend holds the GIL: safe from many threads
        return get_many(self, ids)

    monkeypatch.setattr(SqlHistoryStore, "get_many", recording)
    with ThreadPoolExecutor(max_workers=8) as pool:
        frames = list(pool.map(lambda _: insight_rows(sql_backend.store()), range(16)))
    assert sorted(read) == ["a", "b", "c", "d"]
    assert all(frame.equals(frames[0]) for frame in frames)
    same_rows(frames[0], db_from_scratch(db_store))
