"""Bounded imports: conversation, message, title and unpacked-size limits, and JSON no parser should trust."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import pytest

from chatbot.settings import SettingsError, load_settings
from history.models import MAX_TITLE_LENGTH
from history.stores.json_store import JsonHistoryStore
from history.transfer.import_limits import ImportLimits
from history.transfer.importers import ImportFailed, import_file
from tests.test_import import zipped

DATA = Path(__file__).parent / "data"
MB = 2**20


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return JsonHistoryStore(tmp_path / "conversations")


def saved_files(store: JsonHistoryStore) -> list[str]:
    if not store.root.exists():
        return []
    return sorted(p.name for p in store.root.iterdir() if not p.name.startswith("."))


def schema(number: int, **changes: object) -> dict:
    """A small conversation in this app's format, its id made from the number."""
    stamp = "2026-01-02T03:04:05.000Z"
    conversation = {
        "schema_version": 1, "id": f"c{number:07d}", "title": f"Question {number}",
        "created_at": stamp, "updated_at": stamp, "model": "m",
        "messages": [{"role": "user", "content": f"question {number}", "created_at": stamp}],
    }
    return conversation | changes


def chatgpt(number: int, title: str | None = None) -> dict:
    """A one-message ChatGPT conversation."""
    return {
        "id": f"g-{number}", "title": title or f"Chat {number}", "create_time": 1.7e9 + number,
        "current_node": "n",
        "mapping": {"n": {"id": "n", "parent": None, "children": [], "message": {
            "author": {"role": "user"}, "create_time": 1.7e9 + number,
            "content": {"content_type": "text", "parts": [f"hello {number}"]}}}},
    }


# --- the flood: more conversations than one import takes --------------------------------------


def test_a_20_mb_list_imports_the_first_thousand_says_so_and_the_next_import_brings_the_next(store):
    flood = json.dumps([schema(n) for n in range(76_000)]).encode()
    assert 19 * MB < len(flood) < 20 * MB

    report = import_file(store, "flood.json", flood)

    assert report.conversations == 1000 == len(saved_files(store))
    assert report.limit == ("conversations", 1000, "CHATBOT_IMPORT_MAX_CONVERSATIONS")
    summary = report.summary()
    assert summary.startswith("Imported 1000 conversations (1000 messages) from history file.")
    assert (
        "Stopped at 1,000 conversations, the most one import takes (CHATBOT_IMPORT_MAX_CONVERSATIONS); "
        "the rest of the file was not imported. Import it again to bring in the next ones." in summary
    )
    assert {s.title for s in store.list()} == {f"Question {n}" for n in range(1000)}

    again = import_file(store, "flood.json", flood, limits=ImportLimits(max_conversations=10))

    assert again.conversations == 10, "the 1,000 already here do not count against the limit"
    assert {c.title for c in map(store.get, (i for i, _, _ in again.imported))} == {
        f"Question {n}" for n in range(1000, 1010)
    }


def test_a_chatgpt_zip_of_sixty_thousand_conversations_stops_at_the_limit_without_decoding_the_rest(store):
    export = json.dumps([chatgpt(n) for n in range(60_000)]).encode()
    bomb = zipped({"conversations.json": export, "chat.html": b"<html></html>"})
    assert len(bomb) < len(export) / 10

    tracemalloc.start()
    try:
        report = import_file(store, "export.zip", bomb, limits=ImportLimits(max_conversations=20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert report.conversations == 20 == len(saved_files(store))
    assert report.limit == ("conversations", 20, "CHATBOT_IMPORT_MAX_CONVERSATIONS")
    assert peak < 4 * len(export), "the conversations past the limit are never decoded"


def test_a_zip_that_unpacks_past_the_budget_is_refused_naming_the_setting(store):
    bomb = zipped({f"c{n}.json": json.dumps(schema(n)).encode() + b" " * MB for n in range(6)})
    assert len(bomb) < 100_000

    with pytest.raises(ImportFailed) as failure:
        import_file(store, "bomb.zip", bomb, limits=ImportLimits(max_unpacked_mb=5))

    expected = "'bomb.zip' unzips to 6 MB; the limit is 5 MB (CHATBOT_IMPORT_MAX_UNPACKED_MB)."
    assert expected in str(failure.value)
    assert saved_files(store) == []


def test_the_default_unpacked_budget_refuses_a_zip_bomb_of_a_chatgpt_export(store):
    bomb = zipped({"conversations.json": b"[" + b" " * (60 * MB) + b"]"})
    assert len(bomb) < MB

    expected = r"unzips to 60 MB; the limit is 50 MB \(CHATBOT_IMPORT_MAX_UNPACKED_MB\)"
    with pytest.raises(ImportFailed, match=expected):
        import_file(store, "bomb.zip", bomb)

    assert saved_files(store) == []


def test_the_members_of_an_export_zip_stop_being_read_at_the_conversation_limit(store):
    members = {f"c{n:07d}.json": json.dumps(schema(n)).encode() for n in range(30)}

    report = import_file(store, "export.zip", zipped(members), limits=ImportLimits(max_conversations=12))

    assert report.conversations == 12 == len(saved_files(store))
    assert "CHATBOT_IMPORT_MAX_CONVERSATIONS" in report.summary()


# --- messages per conversation and message length ---------------------------------------------


def test_a_conversation_over_the_message_limit_is_skipped_saying_which_limit(store):
    long = schema(1, title="Long one")
    long["messages"] = long["messages"] * 30
    data = json.dumps([long, schema(2)]).encode()

    report = import_file(store, "two.json", data, limits=ImportLimits(max_messages=25))

    assert report.conversations == 1 and store.list()[0].title == "Question 2"
    assert report.skipped == [
        ("Long one", "has 30 messages; one conversation may bring at most 25 (CHATBOT_IMPORT_MAX_MESSAGES)")
    ]


def test_an_openai_list_longer_than_the_message_limit_is_skipped_without_reading_it_all(store):
    messages = [{"role": "user", "content": f"m{n}"} for n in range(300_000)]

    report = import_file(store, "messages.json", json.dumps(messages).encode())

    assert report.conversations == 0 and saved_files(store) == []
    assert report.skipped == [
        ("messages.json", "has more than 2,000 messages; one conversation may bring at most 2,000 "
         "(CHATBOT_IMPORT_MAX_MESSAGES)")
    ]


def test_a_message_over_the_length_limit_skips_its_conversation_saying_which_limit(store):
    chat = chatgpt(1, "Pasted a book")
    chat["mapping"]["n"]["message"]["content"]["parts"] = ["x" * 100_001]
    data = json.dumps([chat, chatgpt(2)]).encode()

    report = import_file(store, "conversations.json", data)

    assert report.conversations == 1
    assert report.skipped == [
        ("Pasted a book", "has a message of 100,001 characters; an imported message may have at most "
         "100,000 (CHATBOT_IMPORT_MAX_MESSAGE_CHARS)")
    ]


# --- titles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["schema", "chatgpt"])
def test_a_giant_title_is_cut_to_one_line_of_the_rename_limit(store, kind):
    giant = "Line one\nline two " + "word " * 400_000
    item = schema(1, title=giant) if kind == "schema" else chatgpt(1, giant)

    report = import_file(store, "big-title.json", json.dumps([item]).encode())

    [summary] = store.list()
    assert len(summary.title) <= MAX_TITLE_LENGTH and "\n" not in summary.title
    assert summary.title.startswith("Line one line two word word")
    assert store.get(summary.id).title == summary.title
    assert len(json.loads((store.root / f"{summary.id}.json").read_text())["title"]) <= MAX_TITLE_LENGTH
    assert report.titles_cut == 1
    assert f"Cut 1 title to {MAX_TITLE_LENGTH} characters." in report.summary()


# --- JSON that Python's parser accepts or chokes on -------------------------------------------


def chatgpt_with(**node_changes: object) -> bytes:
    chat = chatgpt(1)
    chat["mapping"]["n"].update(node_changes)
    return json.dumps([chat]).encode()


EDGE_CASES = [
    ("nan.json", b'[{"role": "user", "content": "hi", "x": NaN}]', "NaN or Infinity"),
    ("infinity.json", json.dumps(schema(1, temperature=float("inf"))).encode(), "NaN or Infinity"),
    ("overflow.json", b'{"messages": [{"role": "user", "content": "hi"}], "n": 1e999}', "NaN or Infinity"),
    ("surrogate.json", b'[{"role": "user", "content": "a \\ud800 b"}]', "lone surrogate"),
    ("low-surrogate.json", json.dumps(schema(1, title="x\udc00")).encode("utf-8", "surrogatepass").replace(
        b"\xed\xb0\x80", b"\\udc00"), "lone surrogate"),
    ("digits.json", b'[{"role": "user", "content": "hi", "n": ' + b"9" * 4301 + b"}]",
     "more than 4,300 digits"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply"),
    ("parent.json", chatgpt_with(parent=["x"]), "node 'n' has a 'parent' that is not a node id"),
    ("children.json", chatgpt_with(children=5), "node 'n' has 'children' that is not a list"),
    ("current.json", json.dumps([chatgpt(1) | {"current_node": ["n"]}]).encode(),
     "'current_node' that is not a node id"),
]


@pytest.mark.parametrize(("name", "data", "expected"), EDGE_CASES, ids=[case[0] for case in EDGE_CASES])
def test_json_edge_cases_are_refused_in_words_naming_the_file(store, name, data, expected):
    with pytest.raises(ImportFailed) as failure:
        import_file(store, name, data)

    message = str(failure.value)
    assert message.startswith(f"'{name}' ") and expected in message and "Nothing was imported." in message
    assert saved_files(store) == []


def test_a_surrogate_pair_escape_is_text_not_an_error(store):
    data = b'[{"role": "user", "content": "smile \\ud83d\\ude00 and a \\\\ud800 that is only text"}]'

    report = import_file(store, "emoji.json", data)

    [summary] = store.list()
    assert report.conversations == 1
    assert store.get(summary.id).messages[0]["content"] == "smile 😀 and a \\ud800 that is only text"


# --- progress ---------------------------------------------------------------------------------


def test_progress_is_reported_while_saving_and_ends_at_one(store):
    seen: list[tuple[float, str]] = []

    import_file(store, "list.json", json.dumps([schema(n) for n in range(250)]).encode(),
                progress=lambda done, text: seen.append((done, text)))

    fractions = [done for done, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 10
    assert seen[0] == (0.0, "Reading the file…")
    assert seen[-1] == (1.0, "Saving conversation 250 of 250…")


# --- the real exports still import ------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "imports"
# file -> (conversations, messages) it imports today; None: refused in words (other formats, issue 15)
PUBLISHED = {
    "chatgpt-explorer-conversations.json": (5, 10), "dumeeapp-chatgpt-export-bom.json": (2, 10),
    "echomine-001_simple_text-raw.json": (1, 2), "echomine-002_with_images-raw.json": (1, 4),
    "echomine-003_with_code-raw.json": (1, 6), "echomine-claude-sample_export.json": None,
    "echomine-claude-tool_messages.json": None, "echomine-openai_content_types.json": (1, 2),
    "echomine-openai_hidden.json": (1, 2), "echomine-openai_multipart.json": (1, 3),
    "echomine-sample_export.json": (10, 22), "fastchat-sharegpt-dummy_conversation.json": None,
    "librechat-chatbotui-export.json": None, "librechat-chatgpt-citations.json": None,
    "librechat-chatgpt-export.json": (2, 10), "librechat-chatgpt-modern-export.json": None,
    "librechat-chatgpt-tree.json": (1, 6), "librechat-librechat-export.json": None,
    "librechat-librechat-tree.json": None, "librechat-openwebui-export.json": None,
    "openai-cookbook-toy_chat_fine_tuning.jsonl": None, "owimporter-claude_example.json": None,
    "owimporter-gpt_example.json": (1, 10), "owimporter-grok_example.json": None,
    "owimporter-openwebui-chatgpt_output.json": (1, 10), "owimporter-webui-json.json": (1, 2),
    "yaleman-claude-conversations.json": None,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_published_export_imports_as_before_or_is_refused_in_words(store, name):
    data = (FIXTURES / name).read_bytes()
    expected = PUBLISHED[name]
    if expected is None:
        with pytest.raises(ImportFailed, match=f"^'{re.escape(name)}' "):
            import_file(store, name, data)
        assert saved_files(store) == []
        return

    report = import_file(store, name, data)

    assert (report.conversations, report.messages) == expected
    assert len(saved_files(store)) == expected[0]


def test_the_limits_are_settings_and_must_be_positive():
    settings = load_settings(environ={
        "CHATBOT_IMPORT_MAX_CONVERSATIONS": "30", "CHATBOT_IMPORT_MAX_MESSAGES": "40",
        "CHATBOT_IMPORT_MAX_MESSAGE_CHARS": "500", "CHATBOT_IMPORT_MAX_UNPACKED_MB": "2.5",
    })
    assert settings.import_limits() == ImportLimits(30, 40, 500, 2.5)
    assert load_settings(environ={}).import_limits() == ImportLimits()
    with pytest.raises(SettingsError, match="CHATBOT_IMPORT_MAX_CONVERSATIONS"):
        load_settings(environ={"CHATBOT_IMPORT_MAX_CONVERSATIONS": "0"})
