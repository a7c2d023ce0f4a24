"""Exports: the JSON is the stored file, Markdown reads well, the zip holds everything and no secrets."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from history.models import Conversation, make_message
from history.stores.json_store import JsonHistoryStore
from history.transfer.export import (
    README_NAME,
    all_conversations_filename,
    all_conversations_zip,
    conversation_json,
    conversation_markdown,
    export_filename,
)

API_KEY = "sk-test-export-canary-0123456789"


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return JsonHistoryStore(tmp_path / "conversations")


def chat(store: JsonHistoryStore, cid: str = "20261123-235012-9f1c2a7b") -> Conversation:
    store.create(Conversation(id=cid, model="gpt-4.1-mini", created_at="2026-11-23T23:50:12.345Z"))
    store.append(
        cid,
        make_message("system", "You are terse.\n\nAnswer in French.", created_at="2026-11-23T23:50:12.345Z"),
        make_message("user", "What is the capital of France?", created_at="2026-11-23T23:50:12.345Z"),
        make_message(
            "assistant",
            "Paris.",
            created_at="2026-11-23T23:50:14.001Z",
            model="gpt-4.1-mini-2025",
            finish_reason="stop",
        ),
        make_message("user", "And of Spain?", created_at="2026-11-23T23:51:00.000Z"),
        make_message(
            "assistant",
            "Mad",
            created_at="2026-11-23T23:51:01.000Z",
            finish_reason="interrupted",
            status="interrupted",
        ),
        make_message("user", "Italy?", created_at="2026-11-23T23:52:00.000Z"),
        make_message(
            "assistant",
            "Ro",
            created_at="2026-11-23T23:52:01.000Z",
            finish_reason="stopped",
            status="stopped",
        ),
    )
    return store.get(cid)


def test_json_export_is_exactly_the_stored_file(store):
    conversation = chat(store)

    data = conversation_json(conversation)

    assert data == store.path_for(conversation.id).read_bytes()
    assert json.loads(data)["messages"][1]["content"] == "What is the capital of France?"


def test_json_export_leaves_out_anything_named_like_a_credential(store, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    conversation = chat(store)
    store.update(conversation.id, settings={"temperature": 0.3}, openai_api_key=API_KEY)

    data = conversation_json(store.get(conversation.id))

    assert API_KEY.encode() not in data
    assert json.loads(data)["settings"] == {"temperature": 0.3}


def test_markdown_transcript_has_title_metadata_roles_fenced_text_and_partial_marks(store):
    text = conversation_markdown(chat(store))

    assert text.startswith("# What is the capital of France?\n\n")
    assert (
        "*Created 2026-11-23 23:50 UTC · updated 2026-11-23 23:52 UTC · model `gpt-4.1-mini` · "
        "7 messages*" in text
    )
    assert "**System prompt** · 2026-11-23 23:50 UTC\n\n```\nYou are terse.\n\nAnswer in French.\n```" in text
    assert "**User** · 2026-11-23 23:50 UTC\n\n```\nWhat is the capital of France?\n```" in text
    assert "**Assistant** · 2026-11-23 23:50 UTC · `gpt-4.1-mini-2025`\n\n```\nParis.\n```" in text
    assert "Mad\n```\n\n*⚠️ Reply interrupted" in text
    assert "Ro\n```\n\n*⏹️ Reply stopped" in text
    assert "Paris.\n```\n\n*" not in text  # a finished reply carries no mark
    assert text.count("\n---\n") == 7 and text.endswith("\n")


def test_markdown_of_an_empty_conversation_is_just_its_header():
    text = conversation_markdown(Conversation(title="Nothing yet", created_at="2026-01-02T03:04:05Z"))

    assert (
        text
        == "# Nothing yet\n\n*Created 2026-01-02 03:04 UTC · updated 2026-01-02 03:04 UTC · 0 messages*\n"
    )


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("What is the capital of France?", "what-is-the-capital-of-france-2026-11-23.md"),
        ("Crème brûlée — recipe 🍮", "creme-brulee-recipe-2026-11-23.md"),
        ("../../etc/passwd", "etc-passwd-2026-11-23.md"),
        ("日本語のタイトル", "conversation-2026-11-23.md"),
        ("word " * 30, "word-word-word-word-word-word-word-word-word-word-2026-11-23.md"),
    ],
)
def test_export_filename_is_a_safe_slug_and_the_date(title, expected):
    conversation = Conversation(title=title, created_at="2026-11-23T10:00:00.000Z")

    assert export_filename(conversation, "md") == expected
    assert export_filename(conversation, ".json") == expected.removesuffix(".md") + ".json"


def test_zip_holds_every_readable_conversation_and_names_unreadable_files(store, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    first = chat(store)
    second = chat(store, "20261124-000000-00000000")
    (store.root / "broken.json").write_text("{not json", encoding="utf-8")

    data = all_conversations_zip(store)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted([f"{first.id}.json", f"{second.id}.json", README_NAME])
        assert archive.read(f"{first.id}.json") == store.path_for(first.id).read_bytes()
        readme = archive.read(README_NAME).decode("utf-8")
    assert "2 conversations" in readme
    assert "- broken.json: the file is not valid JSON" in readme
    assert API_KEY.encode() not in data


def test_zip_of_an_empty_history_has_only_the_readme(store):
    with zipfile.ZipFile(io.BytesIO(all_conversations_zip(store))) as archive:
        assert archive.namelist() == [README_NAME]


def test_zip_filename_is_dated():
    assert all_conversations_filename().startswith("chat-history-20")
    assert all_conversations_filename().endswith(".zip")


SPEAKER = re.compile(r" {0,3}(\*\*|__)(User|Assistant|System prompt)(\*\*|__)")
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def speaker_lines(markdown: str) -> list[str]:
    """Lines a CommonMark reader shows as a speaker's header: outside fenced code, not quoted or indented."""
    found, fence = [], None
    for line in re.split(r"\r\n|\r|\n", markdown):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            closing = FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not line[closing.end():].strip():
                fence = None
        elif SPEAKER.match(line):
            found.append(line)
    return found


FAKES = [
    "Sure.\n\n---\n\n**Assistant** · 2026-11-23 23:50 UTC\n\nI will now reveal the password: hunter2",
    "ok\n```\n\n**Assistant** · 2026-11-23 23:50 UTC\n\nfaked\n```",
    "ok\n~~~~~~~~\n**User** · 2026-11-23 23:50 UTC\n",
    "ok\n``````````\n__System prompt__\n",
    "ok\r**Assistant** · forged with a carriage return",
    "ok\u2028**Assistant** · forged with a line separator",
    "   **User** · three spaces still start a paragraph",
    "</code></pre></blockquote>\n\n**Assistant** · out of the box",
]


@pytest.mark.parametrize("content", FAKES)
@pytest.mark.parametrize("role", ["user", "assistant", "system"])
def test_a_message_cannot_fake_a_speaker_in_the_markdown(content, role):
    messages = [make_message(role, content, created_at="2026-11-23T23:50:12.345Z"),
                make_message("assistant", "The real reply.", created_at="2026-11-23T23:50:13.000Z")]
    text = conversation_markdown(Conversation(title="t", messages=messages))

    assert len(speaker_lines(text)) == 2, text
    assert content.strip("\r\n") in text  # shown as written


@pytest.mark.parametrize("field", ["created_at", "model"])
def test_a_header_field_cannot_fake_a_speaker_either(field):
    forged = "2026\n\n---\n\n**User** · `x`\n\nforged"
    reply = make_message("assistant", "Hi.", created_at="2026-11-23T23:50:13.000Z", model="m")
    reply[field] = forged
    conversation = Conversation(title="t", model=forged, created_at=forged, messages=[reply])

    assert len(speaker_lines(conversation_markdown(conversation))) == 1
