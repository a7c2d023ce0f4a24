"""What a visitor sees of hostile imports and poisoned files (AppTest, real test server)."""

from __future__ import annotations

import json

import pytest

from history.models import MAX_TITLE_LENGTH
from tests.apptest import button, saved
from tests.test_history_validation import POISON, STAMP, conversation_data
from tests.test_import_limits import EDGE_CASES


def write(history_dir, data: dict) -> None:
    history_dir.mkdir(parents=True, exist_ok=True)
    (history_dir / f"{data['id']}.json").write_text(json.dumps(data), "utf-8")


def good_conversation(history_dir) -> None:
    """An older readable conversation next to the poisoned one."""
    data = conversation_data("20250101-000000-good0000")
    data |= {"title": "Good one", "updated_at": "2025-01-01T00:00:00.000Z"}
    write(history_dir, data)


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poisoned_conversation_never_breaks_the_chat_page(new_visit, history_dir, case):
    good_conversation(history_dir)
    write(history_dir, conversation_data("20260102-030405-poison00", **POISON[case][0]))

    at = new_visit()

    assert not at.exception
    assert at.chat_input, "the chat box is there"
    assert any("Could not read '20260102-030405-poison00.json'" in w.value for w in at.sidebar.warning)
    assert at.sidebar.caption[0].value == "**Good one**", "the readable conversation is opened"
    button(at, "Load History").click().run()
    assert not at.exception and at.dataframe[0].value["title"].tolist() == ["Good one"]


def test_an_old_file_with_a_giant_title_shows_it_cut_on_every_page(new_visit, history_dir):
    giant = "Giant\n" + "title " * 400_000
    write(history_dir, conversation_data("20260102-030405-giant000") | {"title": giant})

    at = new_visit()

    assert not at.exception
    caption = at.sidebar.caption[0].value
    assert caption.startswith("**Giant title title") and len(caption) <= MAX_TITLE_LENGTH + 4
    assert len(at.subheader[0].value) <= MAX_TITLE_LENGTH
    button(at, "Load History").click().run()
    [title] = at.dataframe[0].value["title"].tolist()
    assert title.startswith("Giant title") and len(title) <= MAX_TITLE_LENGTH
    assert json.loads((history_dir / "20260102-030405-giant000.json").read_text())["title"] == giant


def history_page(at):
    return button(at, "Load History").click().run()


def upload(at, name: str, data: bytes):
    return at.file_uploader[0].upload(name, data, "application/json").run()


@pytest.mark.parametrize(("name", "data", "expected"), EDGE_CASES, ids=[case[0] for case in EDGE_CASES])
def test_json_edge_cases_through_the_uploader_are_explained_and_the_uploader_is_cleared(
    new_visit, history_dir, name, data, expected
):
    at = upload(history_page(new_visit()), name, data)

    assert not at.exception
    [error] = at.error
    assert error.value.startswith(f"'{name}' ") and expected in error.value
    assert not at.file_uploader[0].value, "the uploader is cleared"
    at.run()
    assert not at.exception and not at.error, "a rerun does not import or report it again"
    assert saved(history_dir) == []


def test_a_poisoned_field_through_the_uploader_is_refused_saying_what_is_wrong(new_visit, history_dir):
    data = json.dumps(conversation_data("imported-1", feedback=["up"])).encode()

    at = upload(history_page(new_visit()), "poisoned.json", data)

    assert not at.exception
    assert "'feedback' that is neither" in at.error[0].value and "Nothing was imported" in at.error[0].value
    assert saved(history_dir) == []


def test_an_unexpected_failure_of_an_import_is_a_message_logged_once_and_the_uploader_cleared(
    new_visit, history_dir, monkeypatch, caplog
):
    import app_pages.history

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the importer")

    monkeypatch.setattr(app_pages.history, "import_file", broken)
    at = upload(history_page(new_visit()), "conversations.json", b"[]")

    assert not at.exception
    [error] = at.error
    assert error.value.startswith("'conversations.json' could not be imported: something went wrong")
    assert "RuntimeError" not in error.value and "Traceback" not in error.value
    assert "a bug in the importer" in caplog.text
    assert not at.file_uploader[0].value
    at.run()
    assert not at.exception and not at.error


def test_a_flood_through_the_uploader_imports_up_to_the_limit_and_says_so(new_visit, history_dir):
    flood = [
        conversation_data(f"c{n:05d}") | {"title": f"Flood {n}", "updated_at": STAMP} for n in range(50)
    ]

    page = history_page(new_visit(CHATBOT_IMPORT_MAX_CONVERSATIONS=20))
    at = upload(page, "flood.json", json.dumps(flood).encode())

    assert not at.exception
    notice = at.warning[0].value
    assert notice.startswith("Imported 20 conversations (40 messages) from history file.")
    assert "Stopped at 20 conversations, the most one import takes (CHATBOT_IMPORT_MAX_CONVERSATIONS)" in (
        notice
    )
    assert len(saved(history_dir)) == 20 == len(at.dataframe[0].value)
