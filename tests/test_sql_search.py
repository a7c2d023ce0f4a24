"""Listing pages, search and the Insights rows that the database answers itself (SQLite: FTS5;
PostgreSQL: a tsvector with a GIN index), and the upgrade that builds their rows for a version-1
database.

Runs on SQLite and on PostgreSQL (tests/backends.py). Apart from the upgrade and the damaged rows, the
tests use only the store's public methods, so they can join tests/test_store_contract.py once every
store answers them with its own engine.
"""

from __future__ import annotations

import time
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from history.models import Conversation, is_valid_id, make_message
from history.search import MAX_PHRASE_WORDS, MAX_TERMS
from history.stores import sql_schema
from history.stores.sql_rows import conversation_values, save_messages
from history.stores.sql_schema import conversations, engine_for, upgrade
from history.stores.sql_store import SqlHistoryStore
from tests.insights_reference import frame_of


@pytest.fixture
def store(sql_backend):
    return sql_backend.store()


def user(text: str, **extra) -> dict:
    return make_message("user", text, **extra)


def assistant(text: str, **extra) -> dict:
    return make_message("assistant", text, **extra)


def saved(store, conversation_id: str, *messages: dict, day: int | None = None, **fields) -> None:
    """A new conversation, last updated at noon UTC on 2024-05-<day> when a day is given."""
    store.create(Conversation(id=conversation_id, messages=list(messages), **fields))
    if day is not None:
        store.update(conversation_id, updated_at=f"2024-05-{day:02d}T12:00:00.000Z")


def ids(store, query: str, *args, **kwargs) -> list[str]:
    return [hit.id for hit in store.search(query, *args, **kwargs)]


def found(store, query: str) -> list[str]:
    return sorted(ids(store, query))


def may(day: int) -> date:
    return date(2024, 5, day)


# Listing pages


def test_pages_are_newest_first_cut_and_filtered_by_day_in_the_database(store):
    for n, day in enumerate([3, 1, 2, 2, 5], 1):
        saved(store, f"c{n}", user(f"hello {n}"), day=day)
    store.create(Conversation(id="midnight", updated_at="2024-05-04T00:00:00.000Z"))
    newest = ["c5", "midnight", "c1", "c4", "c3", "c2"]  # c3 and c4 updated at one moment: larger id first
    assert [s.id for s in store.page()] == [s.id for s in store.list()] == newest
    assert store.page(1) == [store.latest()] == [store.get("c5").summary()] and store.count() == 6
    assert [s.id for s in store.page(2)] == newest[:2]
    assert [s.id for s in store.page(2, 2)] == newest[2:4]
    assert [s.id for s in store.page(offset=5)] == ["c2"] and store.page(3, 10) == []
    assert [s.id for s in store.page(days=(may(2), may(3)))] == ["c1", "c4", "c3"]  # both days included
    assert [s.id for s in store.page(days=(may(4), None))] == ["c5", "midnight"]  # the day starts at 00:00
    assert [s.id for s in store.page(days=(None, may(3)))] == ["c1", "c4", "c3", "c2"]
    assert [s.id for s in store.page(1, 1, days=(None, may(2)))] == ["c3"]
    assert store.page(days=(may(6), None)) == []
    store.delete("c5")
    assert store.count() == 5 and store.latest().id == "midnight"
    assert store.get("c4").summary() in store.page()


def test_a_page_never_shows_another_owners_conversations_nor_the_trash(sql_backend):
    alice, bob = sql_backend.store("users/alice"), sql_backend.store("users/bob")
    saved(alice, "mine", user("alice's bread"), extra={"source": {"app": "chatgpt", "id": "1"}})
    saved(bob, "mine", user("bob's bread"), assistant("crumbs"))
    saved(bob, "gone", user("bob's old bread"), extra={"source": {"app": "chatgpt", "id": "2"}})
    bob.delete("gone")
    assert alice.count() == bob.count() == 1 and [s.id for s in bob.page()] == ["mine"]
    assert [hit.snippet for hit in bob.search("bread")] == ["User: bob's bread"]
    assert list(alice.insight_rows()["role"]) == ["user"] and len(bob.insight_rows()) == 2
    assert alice.imported_sources() == {"chatgpt:1"} and bob.imported_sources() == set()


# Search


def test_search_finds_every_word_in_any_order_phrases_and_prefixes(store):
    saved(store, "recipe", user("Can I bake sourdough bread?"), assistant("Mix flour and water, then wait"))
    saved(store, "sorting", user("Why is my list not sorted?"), assistant("Call sorted() on it."))
    saved(store, "travel", user("Bread in Paris"), title="Trip to France")
    assert found(store, "bread") == ["recipe", "travel"]
    assert found(store, "water bread") == found(store, "BREAD Water") == ["recipe"]  # across messages
    assert found(store, "sort") == ["sorting"]  # a word matches the words it starts
    assert found(store, '"sourdough bread"') == ["recipe"] and found(store, '"bread sourdough"') == []
    assert found(store, '"flour and water" mix') == ["recipe"]
    assert found(store, '"bake sour"') == []  # a phrase's last word is whole
    assert found(store, "france") == ["travel"]  # the title counts
    assert found(store, "bread cake") == [] and found(store, "nothing") == []


def test_search_splits_words_at_punctuation_on_every_engine(store):
    saved(store, "code", user("See history/search.py, write to user@example.com or e-mail: snake_case, 3.11"))
    for query in ("search", "py", "example", "com", "mail", "e-mail", "snake", "case", "3.11", '"3 11"'):
        assert found(store, query) == ["code"], query
    assert found(store, '"search py write"') == ["code"]
    assert found(store, "3.12") == [] and found(store, "snake_cases") == []


def test_search_ignores_case_in_every_alphabet_but_not_accents(store):
    saved(store, "nata", assistant("PASTÉIS DE NATA from Lisbon"))
    saved(store, "greek", user("ΚΑΛΗΜΕΡΑ κόσμε"))
    assert found(store, "pastéis") == found(store, "Pastéis") == found(store, "PASTÉ") == ["nata"]
    assert found(store, "καλημερα") == found(store, "ΚΌΣΜΕ") == ["greek"]
    assert found(store, "pasteis") == []  # an accent makes another letter, as in the snippet's match


def test_a_phrase_may_span_messages_but_never_runs_from_the_title_into_them(store):
    saved(store, "c", user("recipe wanted"), assistant("more later"), title="Bread")
    assert found(store, '"wanted more"') == ["c"]  # messages follow one another, as history.search.body
    assert found(store, '"bread recipe"') == []


def test_search_ranks_the_most_relevant_first_and_equals_newest_first(store):
    saved(store, "once", user("A long question about many things: bread among them, and other words"), day=9)
    saved(store, "twin-old", user("Which bread should I buy?"), day=2)
    saved(store, "twin-new", user("Which bread should I buy?"), day=3)
    saved(store, "often", user("bread, bread and bread"), assistant("Bread: bread."), title="Bread", day=1)
    assert ids(store, "bread") == ["often", "twin-new", "twin-old", "once"]
    assert ids(store, "bread", 2, 1) == ["twin-new", "twin-old"]
    assert ids(store, "bread", days=(may(2), may(9))) == ["twin-new", "twin-old", "once"]


def test_search_pages_and_filters_by_day(store):
    for day in range(1, 6):
        saved(store, f"d{day}", user("the same words"), day=day)
    assert ids(store, "same words") == ["d5", "d4", "d3", "d2", "d1"]
    assert ids(store, "same", 2, 1) == ["d4", "d3"] and ids(store, "same", 2, 5) == []
    assert ids(store, "same", days=(may(2), may(3))) == ["d3", "d2"]
    assert ids(store, "same", 1, 1, days=(may(2), None)) == ["d4"]


def test_a_hit_shows_its_first_match_labelled_with_the_role(store):
    saved(
        store,
        "geo",
        make_message("system", "Answer in one line."),
        user("What is the capital of Portugal?"),
        assistant("Lisbon is the capital; it is sunny."),
        user(" ".join(["filler"] * 60) + " needle " + " ".join(["hay"] * 60)),
        title="Geography quiz",
    )

    def snippet(query: str) -> str:
        (hit,) = store.search(query)
        return hit.snippet

    assert snippet("lisbon") == "Assistant: Lisbon is the capital; it is sunny."
    assert snippet("capital") == "User: What is the capital of Portugal?"
    assert snippet("line") == "System: Answer in one line."
    assert snippet("geography") == "Geography quiz"  # only the title holds it
    cut = snippet("needle")
    assert cut.startswith("User: …filler") and "needle" in cut and cut.endswith("hay…")


def test_a_huge_query_answers_at_once_keeping_its_first_terms(store):
    first = " ".join(f"w{n}" for n in range(max(MAX_TERMS, MAX_PHRASE_WORDS)))
    saved(store, "c", user(first))
    saved(store, "other", user("w1 w0"))
    words = " ".join(f"w{n}" for n in range(60_000))
    started = time.monotonic()
    assert ids(store, words) == ["c"]  # terms past the first MAX_TERMS are left out
    assert ids(store, f'"{words}"') == ["c"]  # a phrase keeps its first MAX_PHRASE_WORDS words
    assert time.monotonic() - started < 5


def test_a_query_without_words_lists_every_conversation_without_snippets(store):
    saved(store, "a", user("first"), day=1)
    saved(store, "b", user("second"), day=2)
    for blank in ("", "   ", "?!", '""', "— … -", "_"):
        assert [(hit.id, hit.snippet) for hit in store.search(blank)] == [("b", ""), ("a", "")], blank
    assert [hit.summary for hit in store.search("?", 1, 1)] == store.page(1, 1)
    assert ids(store, "...", days=(may(2), None)) == ["b"]


def test_search_follows_every_change(store):
    saved(store, "c", user("about apples"))
    store.append("c", assistant("and pears"))
    assert found(store, "pears apples") == ["c"]
    store.replace_tail("c", 1, assistant("and plums"), expected_count=2)
    assert found(store, "pears") == [] and found(store, "plums") == ["c"]
    store.update("c", title="Orchard")
    assert found(store, "orchard") == ["c"]
    store.delete("c")
    assert found(store, "orchard") == [] and store.search("") == []
    store.restore("c")
    assert found(store, "orchard plums") == ["c"]
    store.delete("c")
    store.delete_forever("c")
    saved(store, "c", user("a new one"))
    assert found(store, "orchard") == [] and found(store, "new") == ["c"]


# Insights


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in one order whatever the order of its conversations (each one's rows kept in order)."""
    ordered = frame.assign(conversation_id=frame["conversation_id"].astype(str))
    return ordered.sort_values("conversation_id", kind="stable").reset_index(drop=True)


def assert_insights_match(store, live: list[str]) -> None:
    expected = frame_of([store.get(conversation_id) for conversation_id in live])
    pd.testing.assert_frame_equal(normalized(store.insight_rows()), normalized(expected))


def test_insight_rows_are_the_frame_of_the_live_conversations_after_every_change(store):
    assert_insights_match(store, [])
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    answer = assistant("yes", latency_ms=120.4, usage=usage, source="scripted")
    store.create(Conversation(id="a", messages=[user("first?"), answer]))
    assert_insights_match(store, ["a"])
    store.create(Conversation(id="b", model="m2"))
    assert_insights_match(store, ["a", "b"])
    system = make_message("system", "be brief")
    store.append("b", system, user("hello\x00nul"), assistant("hi", status="stopped"))
    assert_insights_match(store, ["a", "b"])
    store.update_message("a", 1, answer["created_at"], feedback="up")
    assert_insights_match(store, ["a", "b"])
    assert list(store.insight_rows()["feedback"].astype(object).fillna("-")) == ["-", "up", "-", "-"]
    store.update_message("a", 1, answer["created_at"], feedback=None)
    assert_insights_match(store, ["a", "b"])
    again = assistant("again", first_token_ms=7.6, usage={"total_tokens": 9})
    store.replace_tail("a", 1, again, expected_count=2)
    assert_insights_match(store, ["a", "b"])
    store.replace_tail("a", 0, user("edited first?"), expected_count=2)
    assert_insights_match(store, ["a", "b"])
    assert list(store.insight_rows()["first_question"].dropna()) == ["edited first?", "hello\x00nul"]
    store.append("a", assistant("one"), assistant("two", created_at="not a time"), user("more"))
    store.update("a", title="renamed", temperature=0.3)
    assert_insights_match(store, ["a", "b"])
    store.delete("a")
    assert_insights_match(store, ["b"])
    store.restore("a")
    assert_insights_match(store, ["a", "b"])
    store.delete("b")
    store.delete_forever("b")
    assert_insights_match(store, ["a"])


# Imports


def test_imported_sources_name_the_app_and_id_each_import_came_from(store):
    sources = {
        "chatgpt": {"app": "chatgpt", "id": "abc"},
        "claude": {"app": "claude", "id": 42},
        "file": {"app": "file", "sha256": "f00"},
        "no-id": {"app": "x", "id": None, "sha256": "s"},
        "bad-app": {"app": 3, "id": "n"},
        "no-app": {"id": "n"},
        "float-id": {"app": "y", "id": 1.5},
        "text": "somewhere",
    }
    for conversation_id, source in sources.items():
        store.create(Conversation(id=conversation_id, extra={"source": source, "note": "source"}))
    store.create(Conversation(id="nested", extra={"settings": {"source": {"app": "a", "id": "b"}}}))
    store.create(Conversation(id="trashed", extra={"source": {"app": "chatgpt", "id": "old"}}))
    store.delete("trashed")
    assert store.imported_sources() == {"chatgpt:abc", "claude:42", "file:f00", "x:s"}


# Rows written by hand, and a database from before version 2


def test_pages_counts_and_search_skip_the_rows_a_listing_cannot_read_and_name_them(sql_backend):
    store = sql_backend.store()
    odd_ids = ["ok", "x\n", "-lead", "con", "Com1", "a" * 100, "é", "a b", "tab\t", "Z_9-"]
    extras = {"space-first": ' \n{"a": 1}', "list": "[1]", "text": '"x"'}
    layouts = {"null-layout": "null", "text-layout": '"x"', "object-layout": '{"title": "From layout"}'}
    for n, name in enumerate(odd_ids + list(extras) + list(layouts)):
        saved(store, f"row{n}", user("shared words"), day=n % 9 + 1)
        with engine_for(sql_backend.target).begin() as connection:
            connection.execute(
                sa.text("UPDATE chatbot_conversations SET id = :id, extra = :extra, layout = :layout "
                        "WHERE id = :old"),
                {"id": name, "old": f"row{n}", "extra": extras.get(name, "{}"), "layout": layouts.get(name)},
            )
    readable = sorted([i for i in odd_ids if is_valid_id(i)] + ["space-first", "object-layout"])
    assert sorted(s.id for s in store.page()) == readable and store.count() == len(readable)
    assert found(store, "shared") == readable and found(store, "") == readable
    assert sorted(p.name for p in store.unreadable()) == sorted(set(odd_ids + list(extras) + list(layouts))
                                                                - set(readable))
    assert [s.title for s in store.page() if s.id == "object-layout"] == ["From layout"]
    assert [s.id for s in store.page(3, 2)] == [s.id for s in store.page()][2:5]


def test_a_version_3_database_searches_only_each_owners_live_conversations(sql_backend):
    target = sql_backend.target
    alice, bob = sql_backend.store("users/alice"), sql_backend.store("users/bob")
    saved(alice, "mine", user("alice's bread"))
    saved(alice, "gone", user("stale bread"))
    alice.delete("gone")
    saved(bob, "theirs", user("bob's bread"))
    with engine_for(target).begin() as connection:  # the search table as versions 2 and 3 made it
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("DROP INDEX chatbot_search_owner"))
            for change in ("DROP COLUMN live_owner", "ALTER COLUMN document SET STORAGE EXTENDED"):
                connection.execute(sa.text(f"ALTER TABLE chatbot_search {change}"))
        connection.execute(sa.text("UPDATE chatbot_schema_meta SET value = '3'"))
    sql_schema._upgraded.discard(engine_for(target))  # as a newly started server

    assert upgrade(target) == 3
    alice, bob = SqlHistoryStore(target, "users/alice"), SqlHistoryStore(target, "users/bob")
    assert found(alice, "bread") == ["mine"] and found(bob, "bread") == ["theirs"]
    alice.restore("gone")
    bob.delete("theirs")
    assert found(alice, "bread") == ["gone", "mine"] and found(bob, "bread") == []
    saved(bob, "new", user("fresh bread"))
    assert found(bob, "bread") == ["new"] and found(alice, "fresh") == []


def test_a_version_1_database_gets_search_and_insights_for_what_it_holds(sql_backend):
    target = sql_backend.target
    kept = Conversation(id="old", title="Kept from before", messages=[
        user("sourdough starter?"), assistant("Feed it daily.", feedback="up", latency_ms=900)])
    trashed = Conversation(id="gone", messages=[user("sourdough trash")])
    damaged = Conversation(id="damaged", messages=[user("sourdough, unreadable")])
    version_1 = [sql_schema.schema_meta, sql_schema.conversations, sql_schema.messages]
    with engine_for(target).begin() as connection:  # as version 1 made them
        sql_schema.metadata.create_all(connection, tables=version_1)
        connection.execute(sa.insert(sql_schema.schema_meta).values(name="schema_version", value="1"))
        in_trash = "2024-01-01T00:00:00.000000Z"
        for conversation, deleted in ((kept, None), (trashed, in_trash), (damaged, None)):
            values = {"owner": "", "id": conversation.id, "revision": 1, "deleted_at": deleted}
            row = sa.insert(conversations).values(**values, **conversation_values(conversation))
            serial = connection.execute(row).inserted_primary_key[0]
            save_messages(connection, serial, [], conversation.messages)
        broken = "UPDATE chatbot_messages SET layout = '{\"order\": 1}' WHERE content LIKE '%unread%'"
        connection.execute(sa.text(broken))
        assert not sa.inspect(connection).has_table("chatbot_insight_rows")

    assert upgrade(target) == 1
    store = SqlHistoryStore(target)
    assert sorted(s.id for s in store.page()) == ["damaged", "old"]  # its row alone reads fine, as before
    assert found(store, "sourdough") == ["old"]  # fill() could not read the damaged one's messages
    assert store.search("starter")[0].snippet == "User: sourdough starter?"
    assert found(store, "kept") == ["old"]
    assert_insights_match(store, ["old"])
    store.restore("gone")
    assert found(store, "trash") == ["gone"]
    assert_insights_match(store, ["old", "gone"])
    with engine_for(target).connect() as connection:
        assert connection.scalar(sa.text("SELECT value FROM chatbot_schema_meta")) == "4"
