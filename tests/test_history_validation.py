"""Every key the app uses is checked on import and on read; giant titles are cut on read, never rewritten."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from history.models import MAX_TITLE_LENGTH, Conversation, make_message
from history.stores.json_store import JsonHistoryStore
from history.stores.sql_store import SqlHistoryStore
from history.transfer.importers import ImportFailed, import_file

STAMP = "2026-01-02T03:04:05.000Z"


def conversation_data(conversation_id: str = "poisoned", **reply_changes: object) -> dict:
    """A question and its reply, with keys of the reply replaced (None removes one)."""
    reply = {"role": "assistant", "content": "An answer.", "created_at": STAMP, "model": "m"}
    for key, value in reply_changes.items():
        if value is None:
            reply.pop(key, None)
        else:
            reply[key] = value
    return {
        "schema_version": 1, "id": conversation_id, "title": "Poisoned", "created_at": STAMP,
        "updated_at": STAMP, "model": "m",
        "messages": [{"role": "user", "content": "A question?", "created_at": STAMP}, reply],
    }


# case id -> (changes to the reply, words the reason contains)
POISON: dict[str, tuple[dict, str]] = {
    "alternatives-number": ({"alternatives": 5}, "message 2 has 'alternatives' that is not a list"),
    "alternatives-strings": ({"alternatives": ["old", "older"]}, "message 2's version 1 is not an object"),
    "alternative-without-text": (
        {"alternatives": [{"role": "assistant", "created_at": STAMP}]}, "message 2's version 1 has no text"
    ),
    "replies-number": (
        {"alternatives": [{"role": "assistant", "content": "x", "created_at": STAMP, "replies": 3}]},
        "message 2's version 1 has 'replies' that is not a list",
    ),
    "feedback-list": ({"feedback": ["up"]}, "message 2 has 'feedback' that is neither \"up\" nor \"down\""),
    "feedback-word": ({"feedback": "meh"}, "message 2 has 'feedback' that is neither \"up\" nor \"down\""),
    "status-list": ({"status": ["stopped"]}, "message 2 has 'status' that is not text"),
    "finish-reason-object": ({"finish_reason": {"a": 1}}, "message 2 has 'finish_reason' that is not text"),
    "source-list": ({"source": []}, "message 2 has 'source' that is not text"),
    "error-list": ({"error": ["timeout"]}, "message 2 has 'error' that is not text"),
    "model-number": ({"model": 4}, "message 2 has 'model' that is not text"),
    "no-created-at": ({"created_at": None}, "message 2 has no 'created_at' time"),
    "created-at-number": ({"created_at": 17}, "message 2 has no 'created_at' time"),
    "usage-text": ({"usage": "lots"}, "message 2 has 'usage' that is not an object of token counts"),
    "usage-tokens-text": (
        {"usage": {"prompt_tokens": "5"}}, "message 2 has 'usage' that is not an object of token counts"
    ),
    "latency-text": ({"latency_ms": "slow"}, "message 2 has 'latency_ms' that is not a number"),
}


def test_real_usage_with_nested_token_details_is_accepted(tmp_path):
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
             "prompt_tokens_details": {"cached_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    data = conversation_data(usage=usage, feedback="down", status="stopped", latency_ms=812.5)
    assert Conversation.from_dict(data).messages[1]["usage"] == usage


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poisoned_file_in_the_folder_is_reported_and_the_rest_works(tmp_path, case):
    changes, reason = POISON[case]
    store = JsonHistoryStore(tmp_path / "history")
    store.create(Conversation(id="good", messages=[make_message("user", "fine")]))
    path = store.root / "poisoned.json"
    path.write_text(json.dumps(conversation_data(**changes)), "utf-8")
    before = path.read_bytes()

    assert [s.id for s in store.list()] == ["good"]
    [problem] = store.unreadable()
    assert problem.name == "poisoned.json" and reason in problem.reason
    with pytest.raises(ValueError, match=r"Could not read 'poisoned\.json'"):
        store.get("poisoned")
    assert path.read_bytes() == before
    assert store.append("good", make_message("user", "still works")).messages[-1]["content"] == "still works"


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poisoned_conversation_is_refused_by_import(tmp_path, case):
    changes, reason = POISON[case]
    store = JsonHistoryStore(tmp_path / "history")

    with pytest.raises(ImportFailed) as failure:
        import_file(store, "poisoned.json", json.dumps(conversation_data(**changes)).encode())

    assert f"does not fit the history format ({reason}" in str(failure.value)
    assert store.list() == [] and store.unreadable() == []


def test_a_poisoned_database_row_is_reported_like_a_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    store = SqlHistoryStore(url)
    store.create(Conversation(id="good", messages=[make_message("user", "fine")]))
    store.create(Conversation.from_dict(conversation_data()))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE chatbot_messages SET extra = :extra WHERE role = 'assistant'"),
                           {"extra": json.dumps({"feedback": ["up"]})})
    engine.dispose()

    with pytest.raises(ValueError, match="'feedback' that is neither"):
        store.get("poisoned")
    assert "good" in [s.id for s in store.list()]


# --- giant titles already in the folder --------------------------------------------------------


def test_an_old_file_with_a_giant_title_lists_and_opens_with_the_title_cut_and_is_not_rewritten(tmp_path):
    store = JsonHistoryStore(tmp_path / "history")
    data = conversation_data("giant") | {"title": "First line\r\nsecond " + "x" * (2 * 2**20)}
    path = store.root / "giant.json"
    store.root.mkdir()
    path.write_text(json.dumps(data), "utf-8")
    before = path.read_bytes()

    [summary] = store.list()
    opened = store.get("giant")

    assert summary.title == opened.title
    assert len(summary.title) <= MAX_TITLE_LENGTH and summary.title.startswith("First line second xxx")
    assert path.read_bytes() == before, "reading never rewrites the file"


def test_an_index_holding_a_giant_title_shows_it_cut(tmp_path):
    import sqlite3

    from history.stores import folder_index

    store = JsonHistoryStore(tmp_path / "history")
    store.create(Conversation(id="giant", title="short", messages=[make_message("user", "hi")]))
    store.list()
    folder_index.forget_all()
    with sqlite3.connect(store.root / folder_index.INDEX_NAME) as index:
        index.execute("UPDATE files SET title = ?", ("y" * 500_000,))  # written before titles were cut

    [summary] = JsonHistoryStore(store.root).list()

    assert summary.title == "y" * MAX_TITLE_LENGTH


def test_a_title_of_only_line_breaks_reads_as_the_default(tmp_path):
    conversation = Conversation.from_dict(conversation_data() | {"title": "\n\r\n"})
    assert conversation.title == "New conversation"


def test_a_title_within_the_limit_reads_exactly_as_saved():
    title = "Grüße,  two  spaces \x00 kept"
    assert Conversation.from_dict(conversation_data() | {"title": title}).title == title


FIXTURE = Path(__file__).parent / "data" / "schema_conversation.json"


def test_the_documented_example_still_fits():
    Conversation.from_dict(json.loads(FIXTURE.read_text("utf-8")))


def test_every_store_lists_and_opens_a_giant_title_cut_to_one_line(backend):
    store = backend.store()
    title = "Two\nlines " + "x" * 500_000
    store.create(Conversation(id="giant", title=title, messages=[make_message("user", "hi")]))

    [summary] = store.list()

    expected = ("Two lines " + "x" * MAX_TITLE_LENGTH)[:MAX_TITLE_LENGTH]
    assert summary.title == store.get("giant").title == expected


@pytest.mark.parametrize("case", ["feedback-list", "alternatives-strings", "usage-text", "no-created-at"])
def test_every_store_refuses_to_save_a_poisoned_message(backend, case):
    store = backend.store()
    store.create(Conversation(id="good", messages=[make_message("user", "fine")]))
    changes, reason = POISON[case]
    messages = conversation_data(**changes)["messages"]

    with pytest.raises(ValueError, match=re.escape(reason)):
        store.create(Conversation(id="other", messages=messages))
    if case != "no-created-at":  # append stamps a message that comes without a time
        with pytest.raises(ValueError, match=re.escape(reason.replace("message 2", "message 1"))):
            store.append("good", messages[1])

    assert [s.id for s in store.list()] == ["good"] and len(store.get("good").messages) == 1
