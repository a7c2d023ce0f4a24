"""Importing uploads: every supported format, malformed files that import nothing, limits, re-imports."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import pytest

from history.models import Conversation, make_message
from history.stores import folder_index
from history.stores.json_store import JsonHistoryStore
from history.transfer.export import all_conversations_zip
from history.transfer.importers import ImportFailed, ImportLimits, import_file

DATA = Path(__file__).parent / "data"
MB = 2**20


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return JsonHistoryStore(tmp_path / "conversations")


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def chatgpt_export() -> list:
    return json.loads(fixture("chatgpt_conversations.json"))


def texts(conversation: Conversation) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in conversation.messages]


def by_title(store: JsonHistoryStore) -> dict[str, Conversation]:
    return {s.title: store.get(s.id) for s in store.list()}


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def saved_files(store: JsonHistoryStore) -> list[str]:
    if not store.root.exists():
        return []
    return sorted(p.name for p in store.root.iterdir() if not p.name.startswith("."))


# --- ChatGPT export ---------------------------------------------------------------------------


def test_chatgpt_export_follows_the_current_branch_and_shows_only_visible_text(store):
    report = import_file(store, "conversations.json", fixture("chatgpt_conversations.json"))

    assert report.format == "ChatGPT export"
    assert report.conversations == 2 and report.messages == 8
    assert report.skipped == [("Untitled", "has no messages to import")]
    assert (report.tool_messages, report.non_text_messages) == (1, 2)
    assert report.summary() == (
        "Imported 2 conversations (8 messages) from ChatGPT export. Left out 1 tool message and "
        "2 messages without text (images, files or code). Skipped 1: 'Untitled' has no messages to import."
    )
    saved = by_title(store)
    assert set(saved) == {"Weekend in Lisbon", "Describe this photo"}
    lisbon = saved["Weekend in Lisbon"]
    assert texts(lisbon) == [
        ("user", "Plan a weekend in Lisbon for two."),
        ("assistant", "Day 1: Alfama and the castle.\n\nDay 2: Belém and the riverside."),
        ("user", "What should we eat there?"),  # the edited message: current_node's branch
        ("assistant", "Try the pastéis de nata at Manteigaria, and grilled sardines in Alfama."),
    ]
    assert [m["created_at"] for m in lisbon.messages] == [
        "2024-06-01T08:20:01.000Z",
        "2024-06-01T08:20:10.000Z",
        "2024-06-01T08:23:20.000Z",
        "2024-06-01T08:23:30.000Z",
    ]
    assert lisbon.created_at == "2024-06-01T08:20:00.123Z"
    assert lisbon.updated_at == "2024-06-01T08:23:30.000Z"
    assert lisbon.model == "gpt-4o" and lisbon.messages[1]["model"] == "gpt-4o"
    assert lisbon.extra["source"] == {"app": "chatgpt", "id": "6659a3f0-1c2d-8000-a1b2-000000000001"}
    assert lisbon.id.startswith("20240601-082000-")


def test_chatgpt_keeps_a_visible_system_prompt_and_text_parts_of_multimodal_messages(store):
    import_file(store, "conversations.json", fixture("chatgpt_conversations.json"))

    photo = by_title(store)["Describe this photo"]
    assert texts(photo) == [
        ("system", "You are a helpful assistant. Answer in one sentence."),
        ("user", "What is in this picture?"),  # the image part (a dict) is dropped
        ("assistant", "A grey cat asleep on a sunny windowsill."),
        ("assistant", "This one shows a dog chasing a ball."),  # after an image-only message
    ]
    # No create_time on the last message: it takes the previous message's time.
    assert photo.messages[-1]["created_at"] == photo.messages[-2]["created_at"]
    # The id was under "conversation_id" only.
    assert photo.extra["source"] == {"app": "chatgpt", "id": "665ad8b0-7e3f-8000-b2c3-000000000002"}


def test_chatgpt_without_current_node_takes_the_last_leaf_and_a_single_object_works(store):
    lisbon = chatgpt_export()[0]
    del lisbon["current_node"]
    lisbon["mapping"] = {k: v for k, v in lisbon["mapping"].items() if k not in ("l-u2-new", "l-call")}
    lisbon["mapping"] = {k: v for k, v in lisbon["mapping"].items() if k not in ("l-tool", "l-a2-new")}

    report = import_file(store, "one.json", json.dumps(lisbon).encode())

    assert report.conversations == 1
    assert texts(store.get(report.imported[0][0]))[-1] == ("assistant", "Porto is three hours away by train.")


def test_importing_the_same_chatgpt_export_twice_skips_what_is_already_there(store):
    first = import_file(store, "conversations.json", fixture("chatgpt_conversations.json"))
    folder_index.forget_all()  # a restart in between: duplicates are found from the files

    second = import_file(store, "conversations.json", fixture("chatgpt_conversations.json"))

    assert first.conversations == 2 and second.conversations == 0
    assert ("Weekend in Lisbon", "was already imported") in second.skipped
    assert ("Describe this photo", "was already imported") in second.skipped
    assert store.count() == 2
    assert second.summary().startswith("Imported nothing from ChatGPT export. Skipped 3:")


def test_a_chatgpt_data_export_zip_is_read_through_its_conversations_json(store):
    data = zipped(
        {
            "chat.html": b"<html></html>",
            "user.json": b'{"id": "user-1"}',
            "conversations.json": fixture("chatgpt_conversations.json"),
        }
    )

    report = import_file(store, "export.zip", data)

    assert report.format == "ChatGPT export" and report.conversations == 2


# --- OpenAI messages and the Flask list -------------------------------------------------------


def test_openai_messages_map_roles_drop_tools_and_flatten_text_parts(store):
    report = import_file(store, "request.json", fixture("openai_messages.json"))

    assert report.format == "OpenAI messages list"
    assert (report.conversations, report.messages, report.tool_messages) == (1, 5, 2)
    conversation = store.get(report.imported[0][0])
    assert texts(conversation) == [
        ("system", "You are a weather assistant. Use the tool for live data."),
        ("user", "What's the weather in Oslo right now?"),
        ("assistant", "It is -3 °C and snowing in Oslo."),
        ("user", "And what does this sign say?"),
        ("assistant", 'It says "Slippery road".\n\nDrive carefully!'),
    ]
    assert conversation.messages[1]["name"] == "maria"
    assert conversation.model == "gpt-4o-mini"
    assert conversation.title == "What's the weather in Oslo right now?"


def test_a_bare_openai_list_with_tool_messages_is_accepted(store):
    messages = json.loads(fixture("openai_messages.json"))["messages"]

    report = import_file(store, "messages.json", json.dumps(messages).encode())

    assert report.format == "OpenAI messages list" and report.messages == 5


def test_flask_history_is_imported_once(store):
    first = import_file(store, "conversation_history.json", fixture("conversation_history.json"))
    second = import_file(store, "conversation_history.json", fixture("conversation_history.json"))

    assert first.format == "Flask app history" and (first.conversations, first.messages) == (1, 4)
    conversation = store.get(first.imported[0][0])
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "user", "assistant"]
    assert conversation.messages[2]["content"] == "Thanks, anything shorter?"
    assert second.conversations == 0 and second.skipped[0][1] == "was already imported"


# --- this app's own files ---------------------------------------------------------------------


def test_a_schema_file_keeps_its_id_and_everything_in_it(store):
    report = import_file(store, "capital.json", fixture("schema_conversation.json"))

    assert report.format == "history file"
    assert report.imported == [("20261123-235012-9f1c2a7b", "What is the capital of France?", 2)]
    assert store.get("20261123-235012-9f1c2a7b").to_dict() == json.loads(fixture("schema_conversation.json"))


def test_a_schema_id_already_present_is_not_imported_twice(store):
    import_file(store, "capital.json", fixture("schema_conversation.json"))

    again = import_file(store, "capital.json", fixture("schema_conversation.json"))

    assert again.imported == []
    assert again.skipped == [("What is the capital of France?", "is already in your history")]
    assert saved_files(store) == ["20261123-235012-9f1c2a7b.json"]


def test_a_list_of_schema_conversations_and_an_invalid_id_that_gets_a_new_one(store):
    one = json.loads(fixture("schema_conversation.json"))
    two = copy.deepcopy(one) | {"id": "../../etc/passwd", "title": "Renamed copy"}

    report = import_file(store, "two.json", json.dumps([one, two]).encode())

    assert report.conversations == 2
    new_id = report.imported[1][0]
    assert new_id != "../../etc/passwd" and store.get(new_id).title == "Renamed copy"


def test_export_zip_imports_into_an_empty_store_unchanged(tmp_path):
    source = JsonHistoryStore(tmp_path / "a")
    first = source.create(Conversation(id="20250101-000000-aaaaaaaa", model="m1"))
    source.append(first.id, make_message("system", "Be brief."), make_message("user", "Ünïcode — 日本語?"))
    source.append(first.id, make_message("assistant", "Partial", status="stopped", finish_reason="stopped"))
    second = source.create(Conversation(id="20250102-000000-bbbbbbbb", model="m2"))
    source.append(second.id, make_message("user", "Second"))
    source.update(second.id, title="Renamed", settings={"temperature": 0.2})
    target = JsonHistoryStore(tmp_path / "b")

    report = import_file(target, "chat-history.zip", all_conversations_zip(source))

    assert report.format == "history file (zip)" and report.conversations == 2 and report.skipped == []
    for summary in source.list():
        assert target.get(summary.id).to_dict() == source.get(summary.id).to_dict()
        name = f"{summary.id}.json"
        assert (target.root / name).read_bytes() == (source.root / name).read_bytes()


def test_a_zip_skips_members_that_are_not_conversations_and_imports_the_rest(store):
    data = zipped(
        {
            "good.json": fixture("schema_conversation.json"),
            "notes.txt": b"just notes",
            "broken.json": b"{not json",
            "README.txt": b"ours: ignored without comment",
        }
    )

    report = import_file(store, "mixed.zip", data)

    assert report.conversations == 1
    assert ("notes.txt", "is not a JSON file") in report.skipped
    reasons = dict(report.skipped)
    assert reasons["broken.json"].startswith("is not valid JSON")
    assert len(report.skipped) == 2


# --- malformed files import nothing -----------------------------------------------------------


def chatgpt_with_broken_third() -> bytes:
    items = chatgpt_export()
    items[2]["mapping"]["e-a1"]["parent"] = "no-such-node"
    return json.dumps(items).encode()


def chatgpt_with_missing_current_node() -> bytes:
    items = chatgpt_export()
    items[0]["current_node"] = "gone"
    return json.dumps(items).encode()


def chatgpt_with_loop() -> bytes:
    items = chatgpt_export()
    items[1]["mapping"]["p-root"]["parent"] = "p-a2"
    return json.dumps(items).encode()


def schema_list_with_one_bad() -> bytes:
    good = json.loads(fixture("schema_conversation.json"))
    bad = copy.deepcopy(good) | {"id": "20261123-235012-00000000"}
    bad["messages"][1]["role"] = "bot"
    return json.dumps([good, bad]).encode()


MALFORMED = [
    ("latin1.json", "ünï".encode("latin-1"), "is not UTF-8 text"),
    ("bad.json", b'{"messages": [', "is not valid JSON"),
    ("empty.json", b"  \n", "is empty"),
    ("number.json", b"42", "holds a number"),
    ("object.json", b'{"hello": "world"}', "neither a 'messages' list nor a ChatGPT 'mapping'"),
    ("empty-list.json", b"[]", "nothing to import"),
    ("strings.json", b'["a", "b"]', "item 1 is a string"),
    ("mixed.json", b'[{"role": "user", "content": "hi"}, {"mapping": {}}]', "mixing objects"),
    ("schema.json", b'{"schema_version": 1, "id": "x1", "messages": "no"}', "'messages' must be a list"),
    ("future.json", b'{"schema_version": 9, "id": "x1", "messages": []}', "newer than this app"),
    ("schema-list.json", schema_list_with_one_bad(), "conversation 2: message 2 has role 'bot'"),
    ("chatgpt.json", chatgpt_with_broken_third(), "node 'no-such-node' is missing"),
    ("chatgpt2.json", chatgpt_with_missing_current_node(), "current_node 'gone' is not in its mapping"),
    ("chatgpt3.json", chatgpt_with_loop(), "loops back on itself"),
    ("chatgpt4.json", b'[{"title": "x", "mapping": []}]', "without a 'mapping'"),
    ("openai.json", b'[{"role": "robot", "content": "beep"}]', "role 'robot'"),
    ("openai2.json", b'{"messages": [{"role": "user", "content": 5}]}', "'content' is int"),
    ("openai3.json", b'{"messages": [{"role": "user", "content": [7]}]}', "not an object"),
    ("damaged.zip", b"PK\x03\x04" + b"\x00" * 40, "damaged zip"),
    ("nothing.zip", zipped({"a.txt": b"x", "b.png": b"y"}), "no .json conversation files"),
]


@pytest.mark.parametrize(("name", "data", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_file_says_what_is_wrong_and_imports_nothing(store, name, data, expected):
    with pytest.raises(ImportFailed) as failure:
        import_file(store, name, data)

    message = str(failure.value)
    assert expected in message
    assert message.startswith(f"'{name}' ") and "Nothing was imported." in message
    assert "ChatGPT's conversations.json" in message  # says what would be accepted
    assert saved_files(store) == [] and store.list() == []


def test_a_file_over_the_size_limit_is_refused_before_reading_it(store):
    data = b" " * int(25.3 * MB)

    with pytest.raises(ImportFailed, match=r"'big\.json' is 25\.3 MB; the limit is 20 MB\. Nothing"):
        import_file(store, "big.json", data)

    assert saved_files(store) == []


def test_a_zip_that_inflates_past_the_limit_is_refused(store):
    bomb = zipped({"a.json": b"[" + b" " * (3 * MB) + b"]"})
    assert len(bomb) < 50_000

    with pytest.raises(ImportFailed, match="unzips to 3 MB; the limit is 2 MB"):
        import_file(store, "bomb.zip", bomb, limits=ImportLimits(max_unpacked_mb=2))

    assert saved_files(store) == []


def test_a_zip_member_larger_than_its_header_says_is_refused(store):
    data = zipped({"a.json": b"[" + b" " * (3 * MB) + b"]"})
    real, fake = (3 * MB + 2).to_bytes(4, "little"), (100).to_bytes(4, "little")
    assert data.count(real) == 2
    liar = data.replace(real, fake)  # both headers now claim 100 bytes

    with pytest.raises(ImportFailed, match="is a damaged zip file"):
        import_file(store, "liar.zip", liar, limits=ImportLimits(max_unpacked_mb=2))

    assert saved_files(store) == []


def test_the_summary_lists_at_most_five_skips(store):
    items = [json.loads(fixture("schema_conversation.json")) | {"title": f"T{i}"} for i in range(7)]

    report = import_file(store, "seven.json", json.dumps(items).encode())

    assert report.conversations == 1
    assert report.summary().endswith(
        "Skipped 6: 'T1' has the same id as another conversation in this file; 'T2' has the same id as "
        "another conversation in this file; 'T3' has the same id as another conversation in this file; "
        "'T4' has the same id as another conversation in this file; 'T5' has the same id as another "
        "conversation in this file; and 1 more."
    )


def test_a_conversation_too_large_for_one_file_is_skipped_and_the_rest_imported(store):
    huge = json.loads(fixture("schema_conversation.json")) | {
        "id": "20260101-000000-hugehuge",
        "title": "Huge",
    }
    huge["messages"][0]["content"] = "x" * (21 * MB)
    data = zipped({"huge.json": json.dumps(huge).encode(), "small.json": fixture("schema_conversation.json")})

    report = import_file(store, "two.zip", data, limits=ImportLimits(max_message_chars=30 * MB))

    assert report.skipped == [("Huge", "is larger than 20 MB, the most one conversation file can hold")]
    assert report.conversations == 1


def test_an_openai_list_with_nothing_but_images_and_tools_is_skipped_by_file_name(store):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
        },
        {"role": "tool", "tool_call_id": "x", "content": "42"},
    ]

    report = import_file(store, "images.json", json.dumps(messages).encode())

    assert report.imported == [] and report.skipped == [("images.json", "has no messages to import")]
    assert report.summary() == (
        "Imported nothing from OpenAI messages list. Skipped 1: 'images.json' has no messages to import."
    )
    assert saved_files(store) == []
