"""The HistoryStore contract, on every store: JSON folder, SQLite file, PostgreSQL server, memory.

What only the JSON folder has (its files, caches, the Flask file) is in tests/test_json_store.py;
only the database's (schema version, damaged rows) in tests/test_sql_store.py.
"""

from __future__ import annotations

import threading
import time
import zipfile
from datetime import UTC, date, datetime
from io import BytesIO

import pytest

from history.models import DEFAULT_TITLE, Conversation, InvalidConversation, make_message
from history.search import search_table
from history.stores import json_store
from history.stores.base import ConversationChanged, ConversationNotFound
from history.stores.json_store import encode
from history.transfer.export import all_conversations_zip
from history.transfer.importers import import_file
from tests.insights_reference import frame_of


@pytest.fixture
def backend(any_backend):
    """Here every store, the in-memory one included."""
    return any_backend


@pytest.fixture
def store(backend):
    return backend.store()


def user(text: str) -> dict:
    return make_message("user", text)


def new_conversation(store, conversation_id: str, *texts: str) -> Conversation:
    conversation = store.create(Conversation(id=conversation_id, model="m1"))
    return store.append(conversation_id, *(user(t) for t in texts)) if texts else conversation


def contents(store, conversation_id: str) -> list[str]:
    return [m["content"] for m in store.get(conversation_id).messages]


# Round trip


def test_create_get_append_update_roundtrip(store):
    created = store.create(Conversation(id="chat-1", model="m1"))
    assert store.get("chat-1") == created

    after = store.append("chat-1", user("Hello there"), make_message("assistant", "Hi!"), model="m2")
    assert [m["content"] for m in after.messages] == ["Hello there", "Hi!"]
    assert after.title == "Hello there"
    assert after.model == "m2"
    assert after.updated_at == after.messages[-1]["created_at"]
    assert store.get("chat-1") == after

    renamed = store.update("chat-1", title="Greetings", temperature=0.3)
    assert renamed.title == "Greetings" and renamed.titled_by_user
    assert renamed.extra == {"temperature": 0.3}
    assert store.get("chat-1") == renamed
    assert store.append("chat-1", user("another question")).title == "Greetings"


ODD = Conversation(
    id="odd-1",
    title="Grüße, 你好 👋 \x00 nul",
    created_at="2024-05-01T10:00:00+02:00",
    updated_at="2024-05-01T08:00:05.000Z",
    model="m\x00odel",
    messages=[
        {"content": "key order kept", "role": "system", "created_at": "2024-05-01T08:00:00.000Z"},
        {"role": "user", "content": "a time that is not ISO", "created_at": "yesterday"},
        {"role": "user", "content": "a\x00b 😀 ünï", "created_at": "2024-05-01T08:00:01.000Z"},
        {"created_at": "17", "role": "assistant", "content": "", "usage": {"total_tokens": 3}, "at": 17},
        {"role": "assistant", "content": "x", "created_at": "t\x00", "alternatives": [{"role": "assistant",
         "content": "old", "created_at": "2024-05-01T08:00:02.000Z"}], "feedback": "up", "none": None},
    ],
    extra={"settings": {"temperature": 0.25, "system_prompt": "Be brief."}, "source": {"app": "x", "id": 1},
           "big": 2**62, "float": 1e-300, "list": [1, "two", None, True]},
    titled_by_user=True,
)


def test_every_value_and_key_order_survives(store):
    """The stored conversation encodes to the very bytes the JSON store writes for it."""
    store.create(ODD)
    saved = store.get("odd-1")
    assert saved == ODD and encode(saved) == encode(ODD)
    assert [list(m) for m in saved.messages] == [list(m) for m in ODD.messages]
    assert list(saved.extra) == list(ODD.extra)
    [summary] = store.list()
    assert (summary.title, summary.model, summary.message_count) == (ODD.title, ODD.model, 5)
    changed = store.update_message("odd-1", 4, "t\x00", feedback=None, more="yes")
    assert store.get("odd-1") == changed and list(changed.messages[4])[-1] == "more"


def test_append_stamps_messages_and_copies_them(store):
    new_conversation(store, "chat-1")
    message = {"role": "user", "content": "no time given"}
    saved = store.append("chat-1", message)
    assert "created_at" in saved.messages[0]
    assert message == {"role": "user", "content": "no time given"}
    assert store.get("chat-1") == saved


def test_create_refuses_an_existing_id(store):
    new_conversation(store, "chat-1", "first")
    before = store.get("chat-1")
    with pytest.raises(FileExistsError):
        store.create(Conversation(id="chat-1"))
    assert store.get("chat-1") == before


def test_append_uses_what_is_saved_not_the_callers_copy(store):
    new_conversation(store, "chat-1")
    session_a = store.get("chat-1")
    session_b = store.get("chat-1")
    store.append(session_a.id, user("from a"))
    fresh = store.append(session_b.id, user("from b"))
    assert [m["content"] for m in fresh.messages] == ["from a", "from b"]


def test_update_refuses_fixed_fields_and_wrong_types(store):
    new_conversation(store, "chat-1", "hi")
    before = store.get("chat-1")
    for fields in ({"id": "other"}, {"messages": []}, {"schema_version": 2}, {"created_at": "x"}):
        with pytest.raises(ValueError):
            store.update("chat-1", **fields)
    with pytest.raises(TypeError):
        store.update("chat-1", title=5)
    with pytest.raises(TypeError):
        store.append("chat-1", user("x"), model=5)
    with pytest.raises(InvalidConversation):
        store.append("chat-1", {"role": "robot", "content": "beep"})
    assert store.get("chat-1") == before


def test_an_empty_store_reads_as_empty(store):
    assert store.list() == [] and store.unreadable() == [] and store.latest() is None
    assert store.count() == 0 and store.deleted() == []
    for attempt in (
        lambda: store.get("nope"),
        lambda: store.append("nope", user("x")),
        lambda: store.update("nope", title="x"),
        lambda: store.delete("nope"),
        lambda: store.restore("nope"),
        lambda: store.get_deleted("nope"),
        lambda: store.replace_tail("nope", 0, expected_count=0),
        lambda: store.update_message("nope", 0, "t", feedback="up"),
    ):
        with pytest.raises(ConversationNotFound):
            attempt()


def test_a_save_that_fails_midway_keeps_what_was_saved(store):
    new_conversation(store, "chat-1", "kept")
    before = store.get("chat-1")
    with pytest.raises(TypeError):
        store.append("chat-1", {"role": "user", "content": "x", "attachment": object()})
    with pytest.raises(ValueError):
        store.update("chat-1", temperature=float("nan"))  # strict JSON, as in the file
    assert store.get("chat-1") == before and store.list()[0].message_count == 1


def test_a_conversation_may_not_outgrow_the_size_cap(store, monkeypatch):
    new_conversation(store, "chat-1", "hi")
    monkeypatch.setattr(json_store, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InvalidConversation, match="start a new conversation"):
        store.append("chat-1", user("x" * 2000))
    with pytest.raises(InvalidConversation, match="start a new conversation"):
        store.create(Conversation(id="big", messages=[user("x" * 2000)]))
    assert contents(store, "chat-1") == ["hi"] and not store.exists("big")


BAD_IDS = ["../x", "..", "/etc/passwd", "a/b", "a\x00b", "CON", "nul", ".hidden", "a.json", "", " ", "x\n",
           "é", "a" * 101, None, 42, b"abc", ["a"]]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_an_invalid_id_is_never_found(store, bad):
    new_conversation(store, "good", "x")
    assert not store.exists(bad)
    for attempt in (
        lambda: store.get(bad),
        lambda: store.append(bad, user("x")),
        lambda: store.update(bad, title="x"),
        lambda: store.delete(bad),
        lambda: store.restore(bad),
        lambda: store.get_deleted(bad),
        lambda: store.create(Conversation(id=bad)),
    ):
        with pytest.raises(ConversationNotFound):
            attempt()
    assert [s.id for s in store.list()] == ["good"]


def test_the_longest_valid_id_works(store):
    longest = "a" * 100
    store.create(Conversation(id=longest))
    assert store.get(longest).id == longest and store.exists(longest)


# Listing


def test_list_is_newest_first_with_latest_and_count(store):
    for conversation_id, updated in [("a", "2024-01-02"), ("b", "2024-03-01"), ("c", "2024-02-01")]:
        store.create(Conversation(id=conversation_id, created_at=f"{updated}T00:00:00.000Z"))
    # A hand-edited time zone still sorts by the actual moment.
    store.update("c", updated_at="2024-03-01T01:30:00+02:00")
    assert [s.id for s in store.list()] == ["b", "c", "a"]
    assert store.latest().id == "b"
    assert store.count() == 3
    assert store.exists("a") and not store.exists("zzz")
    for conversation_id in ("y", "x", "z"):  # the same time: larger id first, on every store
        store.create(Conversation(id=conversation_id, created_at="2025-01-01T00:00:00.000Z"))
    assert [s.id for s in store.list()][:3] == ["z", "y", "x"]


def test_summaries_match_the_conversations(store):
    new_conversation(store, "chat-1", "What is the capital of France?")
    store.append("chat-1", make_message("assistant", "Paris."), model="m9")
    [summary] = store.list()
    saved = store.get("chat-1")
    assert summary == saved.summary()
    assert (summary.title, summary.message_count) == ("What is the capital of France?", 2)
    assert summary.model == "m9"


def test_default_title_until_a_user_speaks(store):
    assert store.create(Conversation(id="quiet")).title == DEFAULT_TITLE
    assert store.append("quiet", make_message("system", "be brief")).title == DEFAULT_TITLE


# Per-user isolation (login on: each signed-in user is an owner)


def test_owners_never_see_each_others_conversations(backend):
    shared, alice, bob = backend.store(), backend.store("users/alice"), backend.store("users/bob")
    for store, text in ((shared, "shared"), (alice, "alice"), (bob, "bob")):
        new_conversation(store, "same-id", text)
    new_conversation(alice, "only-alice", "secret")
    assert contents(shared, "same-id") == ["shared"]
    assert contents(bob, "same-id") == ["bob"]
    assert [s.id for s in bob.list()] == ["same-id"] and not bob.exists("only-alice")
    for attempt in (lambda: bob.get("only-alice"), lambda: bob.append("only-alice", user("x")),
                    lambda: bob.delete("only-alice"), lambda: shared.get("only-alice")):
        with pytest.raises(ConversationNotFound):
            attempt()
    alice.delete("same-id")
    assert bob.deleted() == [] and shared.exists("same-id") and not alice.exists("same-id")
    with pytest.raises(ConversationNotFound):
        bob.restore("same-id")
    alice.restore("same-id")
    assert contents(alice, "same-id") == ["alice"]
    assert bob.search("secret") == [] and [h.id for h in alice.search("secret")] == ["only-alice"]


# Trash


def test_delete_and_restore(store):
    new_conversation(store, "chat-1", "keep me")
    new_conversation(store, "chat-2", "other")
    original = store.get("chat-1")

    store.delete("chat-1")
    assert [s.id for s in store.list()] == ["chat-2"]
    assert not store.exists("chat-1")
    with pytest.raises(ConversationNotFound):
        store.get("chat-1")
    assert store.get_deleted("chat-1") == original
    assert [s.id for s in store.deleted()] == ["chat-1"]

    store.restore("chat-1")
    assert store.get("chat-1") == original and store.deleted() == []
    assert {s.id for s in store.list()} == {"chat-1", "chat-2"}
    with pytest.raises(ConversationNotFound):
        store.restore("chat-1")
    with pytest.raises(ConversationNotFound):
        store.get_deleted("chat-1")
    with pytest.raises(ConversationNotFound):
        store.delete("never-existed")


def test_restore_refuses_to_overwrite_a_reused_id(store):
    new_conversation(store, "chat-1", "old")
    store.delete("chat-1")
    new_conversation(store, "chat-1", "new")
    with pytest.raises(FileExistsError):
        store.restore("chat-1")
    assert contents(store, "chat-1") == ["new"]
    store.delete("chat-1")  # replaces the older deleted copy
    assert [s.id for s in store.deleted()] == ["chat-1"] and contents_deleted(store, "chat-1") == ["new"]


def contents_deleted(store, conversation_id: str) -> list[str]:
    return [m["content"] for m in store.get_deleted(conversation_id).messages]


def test_deleted_lists_the_trash_most_recently_deleted_first_until_restored(store):
    for conversation_id in ("a", "b", "c"):
        new_conversation(store, conversation_id, f"question {conversation_id}")
    store.delete("b")
    time.sleep(0.05)  # the JSON trash is ordered by the files' change times, which tick coarsely
    store.delete("a")
    deleted = store.deleted()
    assert [(s.id, s.title, s.message_count) for s in deleted] == [
        ("a", "question a", 1), ("b", "question b", 1),
    ]
    store.restore("b")
    assert [s.id for s in store.deleted()] == ["a"]
    assert {s.id for s in store.list()} == {"b", "c"}
    assert contents(store, "b") == ["question b"]


def test_purge_removes_for_good_only_what_was_deleted_before_the_cutoff(backend):
    store, other = backend.store(), backend.store("users/bob")
    for conversation_id in ("old", "recent", "live"):
        new_conversation(store, conversation_id, f"question {conversation_id}")
    new_conversation(other, "old", "bob's")
    store.delete("old")
    other.delete("old")
    time.sleep(0.05)  # the JSON trash is dated by the files' change times, which tick coarsely
    cutoff = datetime.now(UTC)
    time.sleep(0.05)
    store.delete("recent")

    assert store.purge_deleted(cutoff) == 1
    assert [s.id for s in store.deleted()] == ["recent"]
    for gone in (store.restore, store.get_deleted):
        with pytest.raises(ConversationNotFound):
            gone("old")
    assert contents(store, "live") == ["question live"]
    assert contents_deleted(store, "recent") == ["question recent"]
    assert [s.id for s in other.deleted()] == ["old"]  # another owner's trash is theirs
    assert store.purge_deleted(cutoff) == 0
    new_conversation(store, "old", "the id is free again")
    assert contents(store, "old") == ["the id is free again"]


def test_delete_forever_removes_one_deleted_conversation(store):
    for conversation_id in ("a", "b", "live"):
        new_conversation(store, conversation_id, f"question {conversation_id}")
    store.delete("a")
    store.delete("b")

    store.delete_forever("a")

    assert [s.id for s in store.deleted()] == ["b"]
    with pytest.raises(ConversationNotFound):
        store.restore("a")
    for missing in ("a", "live", "never-existed", "../b"):
        with pytest.raises(ConversationNotFound):
            store.delete_forever(missing)
    assert contents(store, "live") == ["question live"] and contents_deleted(store, "b") == ["question b"]


# Replacing the end of a conversation (regenerate, edit) and changing one message (feedback)


def test_replace_tail_swaps_the_end_in_one_write(store):
    new_conversation(store, "chat-1", "one", "two", "three")
    reply = {"role": "assistant", "content": "new ending"}
    after = store.replace_tail("chat-1", 1, reply, make_message("user", "and more"), expected_count=3)
    assert [m["content"] for m in after.messages] == ["one", "new ending", "and more"]
    assert "created_at" in after.messages[1] and reply == {"role": "assistant", "content": "new ending"}
    assert after.updated_at == after.messages[-1]["created_at"]
    assert store.get("chat-1") == after
    assert store.list()[0].message_count == 3

    assert len(store.replace_tail("chat-1", 3, expected_count=3).messages) == 3
    assert [m["content"] for m in store.replace_tail("chat-1", 1, expected_count=3).messages] == ["one"]
    assert contents(store, "chat-1") == ["one"] and store.list()[0].message_count == 1
    last = store.get("chat-1").messages[-1]["created_at"]
    grown = store.replace_tail("chat-1", 0, user("x"), user("y"), expected_count=1, expected_last=last)
    assert store.get("chat-1") == grown and [m["content"] for m in grown.messages] == ["x", "y"]


def test_replace_tail_refuses_a_conversation_that_changed(store):
    new_conversation(store, "chat-1", "one", "two")
    before = store.get("chat-1")
    for start, expected_count in ((1, 1), (1, 3), (-1, 2), (3, 2)):
        with pytest.raises(ConversationChanged, match="chat-1"):
            store.replace_tail("chat-1", start, user("lost"), expected_count=expected_count)
    with pytest.raises(ConversationChanged):
        store.replace_tail("chat-1", 1, user("lost"), expected_count=2, expected_last="2001-01-01T00:00:00Z")
    with pytest.raises(InvalidConversation):
        store.replace_tail("chat-1", 1, {"role": "robot", "content": "beep"}, expected_count=2)
    with pytest.raises(ConversationNotFound):
        store.replace_tail("nope", 0, user("x"), expected_count=0)
    assert store.get("chat-1") == before


def test_update_message_sets_and_removes_extra_fields_only(store):
    conversation = new_conversation(store, "chat-1", "one", "two")
    stamp = conversation.messages[1]["created_at"]
    after = store.update_message("chat-1", 1, stamp, feedback="up", note={"why": "clear"})
    assert after.messages[1] == {**conversation.messages[1], "feedback": "up", "note": {"why": "clear"}}
    assert after.updated_at == conversation.updated_at and after.messages[0] == conversation.messages[0]
    assert store.get("chat-1") == after

    store.update_message("chat-1", 1, stamp, feedback=None, missing=None)
    saved = store.get("chat-1")
    assert saved.messages[1] == {**conversation.messages[1], "note": {"why": "clear"}}
    assert saved.updated_at == conversation.updated_at


def test_update_message_refuses_core_fields_and_a_message_that_moved(store):
    conversation = new_conversation(store, "chat-1", "one")
    stamp = conversation.messages[0]["created_at"]
    before = store.get("chat-1")
    for field in ("role", "content", "created_at"):
        with pytest.raises(ValueError, match=field):
            store.update_message("chat-1", 0, stamp, **{field: "changed"}, feedback="up")
    for index, created_at in ((0, "2001-01-01T00:00:00.000Z"), (1, stamp), (-1, stamp)):
        with pytest.raises(ConversationChanged):
            store.update_message("chat-1", index, created_at, feedback="up")
    assert store.get("chat-1") == before


# Concurrency (processes too: tests/test_store_concurrency.py)


def test_threads_appending_to_one_conversation_lose_nothing(store):
    store.create(Conversation(id="shared"))
    threads, turns, errors = 6, 10, []
    start = threading.Barrier(threads)

    def write(writer: int) -> None:
        try:
            start.wait()
            for seq in range(turns):
                store.append("shared", user(f"{writer}:{seq}"))
                if seq == turns // 2:
                    store.update("shared", **{f"w{writer}": seq})
        except BaseException as error:  # noqa: BLE001 - the test asserts there were none
            errors.append(error)

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    saved = store.get("shared")
    assert len(saved.messages) == threads * turns == store.list()[0].message_count
    for writer in range(threads):
        mine = [m["content"] for m in saved.messages if m["content"].startswith(f"{writer}:")]
        assert mine == [f"{writer}:{seq}" for seq in range(turns)]
    assert saved.extra == {f"w{w}": turns // 2 for w in range(threads)}


def test_only_one_of_many_racing_creates_wins(store):
    outcomes, start = [], threading.Barrier(6)

    def create(n: int) -> None:
        start.wait()
        try:
            store.create(Conversation(id="race", messages=[user(str(n))]))
            outcomes.append("created")
        except FileExistsError:
            outcomes.append("exists")

    workers = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(outcomes) == ["created"] + ["exists"] * 5
    assert len(store.get("race").messages) == 1


# Search, export and import work on every store


def fill(store) -> None:
    store.create(Conversation(id="c1", created_at="2024-01-01T00:00:00.000Z", messages=[
        user("How do I bake bread?"), make_message("assistant", "Flour, water, yeast and salt.")]))
    store.create(Conversation(id="c2", created_at="2024-01-02T00:00:00.000Z", messages=[
        user("Tell me about Paris"), make_message("assistant", "Paris has bread too: baguettes.")]))


def test_search_finds_every_word_in_any_order_most_relevant_then_newest(store):
    fill(store)
    assert {h.id for h in store.search("bread")} == {"c1", "c2"}
    assert [h.id for h in store.search("paris BREAD")] == ["c2"]  # words in different messages
    assert [h.id for h in store.search("bak")] == ["c1"]  # a word matches as a prefix while typing
    assert [h.id for h in store.search('"water yeast"')] == ["c1"]  # punctuation between words is fine
    assert store.search('"yeast water"') == [] and store.search("bread nothing") == []
    assert store.search("yeast")[0].snippet == "Assistant: Flour, water, yeast and salt."
    table = search_table(store.search("paris"))
    assert list(table["id"]) == ["c2"] and list(table["snippet"]) == ["User: Tell me about Paris"]
    store.append("c2", user("Yeast, yeast, yeast: what does yeast do?"))
    assert [h.id for h in store.search("yeast")] == ["c2", "c1"]  # five mentions rank above one
    for twin, day in (("twin-old", "01"), ("twin-new", "02")):
        at = f"2024-05-{day}T00:00:00.000Z"
        store.create(Conversation(id=twin, created_at=at, updated_at=at, messages=[
            make_message("user", "Sourdough starter?", created_at=at)]))
    assert [h.id for h in store.search("sourdough")] == ["twin-new", "twin-old"]  # as relevant: newest first


def test_search_and_pages_take_a_limit_an_offset_and_days(store):
    for n in range(5):
        store.create(Conversation(id=f"d{n}", created_at=f"2024-03-0{n + 1}T10:00:00.000Z", messages=[
            make_message("user", f"note number {n}", created_at=f"2024-03-0{n + 1}T10:00:00.000Z")]))
    assert [s.id for s in store.page(2)] == ["d4", "d3"]
    assert [s.id for s in store.page(2, 2)] == ["d2", "d1"]
    assert [s.id for s in store.page(days=(date(2024, 3, 2), date(2024, 3, 3)))] == ["d2", "d1"]
    assert [h.id for h in store.search("note", 2, 1)] == ["d3", "d2"]
    assert [h.id for h in store.search("note", days=(date(2024, 3, 4), None))] == ["d4", "d3"]
    assert [(h.id, h.snippet) for h in store.search("  ", 1)] == [("d4", "")]  # blank: newest first
    assert store.latest().id == "d4" and store.count() == 5


def test_insight_rows_follow_every_change(store):
    fill(store)
    store.update_message("c1", 1, store.get("c1").messages[1]["created_at"], feedback="down")
    store.append("c2", user("And Lyon?"))
    store.delete("c1")
    rows = store.insight_rows()
    assert frame_of([store.get("c2")]).equals(rows)
    store.restore("c1")
    rows = store.insight_rows().sort_values(["conversation_id", "created_at"], ignore_index=True)
    assert len(rows) == 5 and list(rows["feedback"].dropna()) == ["down"]


def test_export_zip_holds_every_conversation_as_its_file(store):
    fill(store)
    with zipfile.ZipFile(BytesIO(all_conversations_zip(store))) as archive:
        names = sorted(archive.namelist())
        assert names == ["README.txt", "c1.json", "c2.json"]
        assert archive.read("c1.json") == encode(store.get("c1"))


def test_an_exported_zip_imports_into_another_store(backend, make_backend):
    source = backend.store()
    fill(source)
    data = all_conversations_zip(source)
    for name in ("json", "sqlite"):
        target = make_backend(name).store("users/x")
        report = import_file(target, "export.zip", data)
        assert (report.conversations, report.messages) == (2, 4)
        assert target.get("c1") == source.get("c1") and target.get("c2") == source.get("c2")
        again = import_file(target, "export.zip", data)
        assert again.conversations == 0 and len(again.skipped) == 2


def test_import_of_another_apps_messages_is_not_repeated(store):
    data = b'{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}'
    assert import_file(store, "openai.json", data).conversations == 1
    assert import_file(store, "openai.json", data).conversations == 0
    assert store.count() == 1
