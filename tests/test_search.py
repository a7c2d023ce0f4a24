"""Search on every store: every word (any order, any case, as a prefix), "phrases", relevance, snippets."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from history.listing import COLUMNS
from history.models import Conversation, make_message
from history.search import SEARCH_COLUMNS, Term, query_terms, search_table
from history.stores.json_store import JsonHistoryStore


@pytest.fixture
def store(any_backend):
    return any_backend.store()


def add(store, cid: str, day: int, *turns: str, title: str | None = None) -> None:
    """A conversation dated 2026-01-<day>; turns alternate user and assistant."""
    stamp = f"2026-01-{day:02d}T12:00:00.000Z"
    store.create(Conversation(id=cid, model="m", created_at=stamp))
    roles = ("user", "assistant")
    store.append(cid, *(make_message(roles[i % 2], text, created_at=stamp) for i, text in enumerate(turns)))
    store.update(cid, updated_at=stamp, **({"title": title} if title else {}))


@pytest.fixture
def filled(store):
    add(store, "lisbon", 3, "What should I see in Lisbon?",
        "Day one: Alfama. Day two: Belém and PASTÉIS de nata.")
    add(store, "porto", 5, "Is Porto worth a day trip from Lisbon?",
        "Yes: the Ribeira and port wine cellars.")
    add(store, "python", 4, "How do I sort a list in Python?", "Use sorted(items) or items.sort().")
    add(store, "titled", 1, "Unrelated words only.", "Nothing else here.", title="Trip notes: Lisbon")
    return store


def ids(hits) -> list[str]:
    return [hit.id for hit in hits]


def test_every_word_must_match_somewhere_in_the_conversation_in_any_order(filled):
    assert set(ids(filled.search("lisbon"))) == {"porto", "lisbon", "titled"}
    assert ids(filled.search("wine lisbon")) == ["porto"]  # words in different messages
    assert ids(filled.search("lisbon sorted")) == []


def test_a_word_matches_as_the_start_of_a_word_while_typing(filled):
    assert ids(filled.search("sor")) == ["python"]  # sort, sorted
    assert set(ids(filled.search("lis"))) == {"porto", "lisbon", "titled", "python"}  # lisbon, list
    assert ids(filled.search("isbon")) == []  # inside a word is not a match


def test_case_does_not_matter_on_either_side(filled):
    assert ids(filled.search("LISBON")) == ids(filled.search("lisbon"))
    assert ids(filled.search("pastéis")) == ["lisbon"]  # stored as PASTÉIS
    assert ids(filled.search("BELÉM")) == ["lisbon"]


def test_quoted_phrases_must_appear_whole_and_in_order(filled):
    assert ids(filled.search('"day trip"')) == ["porto"]
    assert ids(filled.search('"trip day"')) == []
    assert ids(filled.search('"sorted items"')) == ["python"]  # punctuation between the words is fine
    assert query_terms('  Day  "Day   Trip" day ') == [Term(("day",)), Term(("day", "trip"))]
    assert query_terms("e-mail 3.11") == [Term(("e", "mail")), Term(("3", "11"))]


def test_a_query_of_only_punctuation_or_spaces_lists_everything_newest_first(filled):
    for blank in ("", "   ", '"" -- ?!'):
        hits = filled.search(blank)
        assert ids(hits) == ["porto", "python", "lisbon", "titled"]
        assert {hit.snippet for hit in hits} == {""}


def test_more_mentions_rank_first_and_equals_go_newest_first(store):
    add(store, "once", 9, "A note about tea.")
    add(store, "often", 2, "Tea, tea and more tea.", "Green tea or black tea?", title="Tea")
    add(store, "twin-old", 3, "Coffee beans")
    add(store, "twin-new", 4, "Coffee beans")
    assert ids(store.search("tea")) == ["often", "once"]
    assert ids(store.search("coffee")) == ["twin-new", "twin-old"]


def test_hits_carry_the_summary_and_a_snippet_with_the_role_and_the_match(filled):
    (hit,) = filled.search("wine")
    assert hit.summary == filled.get("porto").summary()
    assert hit.snippet == "Assistant: Yes: the Ribeira and port wine cellars."
    (lisbon,) = filled.search("alfama")
    assert lisbon.snippet == "Assistant: Day one: Alfama. Day two: Belém and PASTÉIS de nata."


def test_a_match_only_in_the_title_shows_the_title(filled):
    (hit,) = filled.search("notes")
    assert hit.id == "titled" and hit.snippet == "Trip notes: Lisbon"


def test_snippets_of_long_messages_are_cut_around_the_first_match(store):
    text = " ".join(f"word{i}" for i in range(200)) + " needle " + " ".join(f"tail{i}" for i in range(200))
    add(store, "long", 1, "short question", text)
    (hit,) = store.search("NEEDLE")
    assert hit.snippet.startswith("Assistant: …") and hit.snippet.endswith("…")
    assert "needle" in hit.snippet and len(hit.snippet) < 200
    assert " word" in hit.snippet and "tail" in hit.snippet  # context on both sides, whole words


def test_a_snippet_never_cuts_the_match_even_without_spaces_around_it(store):
    add(store, "dense", 1, "q", "x" * 300 + "-needle-" + "y" * 300)
    (hit,) = store.search("needle")
    assert "needle" in hit.snippet


def test_limit_offset_and_days_page_through_the_hits(filled):
    everything = ids(filled.search("lisbon"))
    assert ids(filled.search("lisbon", 2)) == everything[:2]
    assert ids(filled.search("lisbon", 2, 2)) == everything[2:]
    from datetime import date

    assert set(ids(filled.search("lisbon", days=(date(2026, 1, 2), date(2026, 1, 4))))) == {"lisbon"}


def test_search_sees_every_change(filled):
    assert ids(filled.search("tram")) == []
    filled.append("lisbon", make_message("user", "And the tram 28?"))
    assert ids(filled.search("tram")) == ["lisbon"]
    filled.delete("lisbon")
    assert ids(filled.search("tram")) == []
    filled.restore("lisbon")
    assert ids(filled.search("tram")) == ["lisbon"]


def test_a_query_of_60000_words_is_answered_at_once(filled):
    assert filled.search(" ".join(f"w{i}" for i in range(60_000))) == []


def test_the_table_has_the_listing_columns_plus_the_snippet_in_relevance_order(filled):
    table = search_table(filled.search("lisbon"))
    assert list(table.columns) == SEARCH_COLUMNS == [*COLUMNS, "snippet"]
    assert list(table["id"]) == ids(filled.search("lisbon"))


def test_imported_sources_are_read_from_each_conversation(store):
    add(store, "plain", 1, "hello")
    store.update("plain", source={"app": "chatgpt", "id": "abc"})
    assert store.imported_sources() == {"chatgpt:abc"}


# The JSON folder: files changed outside the app, unreadable files, sessions on threads


@pytest.fixture
def folder(tmp_path) -> JsonHistoryStore:
    store = JsonHistoryStore(tmp_path / "conversations")
    add(store, "a", 1, "Lisbon trams", "Take the 28.")
    add(store, "b", 2, "Porto wine", "Cellars by the river.")
    return store


def test_search_sees_a_file_another_process_rewrote(folder):
    path = folder.root / "b.json"
    path.write_text(path.read_text("utf-8").replace("Porto", "Braga"), "utf-8")
    os.utime(path, ns=(1, 1))  # even with an old time: the size and inode tell
    assert ids(folder.search("braga")) == ["b"] and ids(folder.search("porto")) == []


def test_unreadable_files_are_left_out_not_fatal(folder):
    (folder.root / "broken.json").write_text("{", encoding="utf-8")
    assert ids(folder.search("lisbon")) == ["a"]


def test_searches_from_many_threads_while_conversations_change(folder):
    """Streamlit serves each session on a thread: they share one index and must all see valid results."""

    def work(n: int) -> list[str]:
        store = JsonHistoryStore(folder.root)
        if n % 4 == 0:
            add(store, f"new{n}", 3, f"Lisbon again {n}")
        return ids(store.search("lisbon"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(32)))
    assert all("a" in found for found in results)
    assert len(folder.search("lisbon")) == 9
