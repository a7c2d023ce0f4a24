"""A full or read-only history disk, for every action that writes: the user is told why in words,
what they typed stays in its box, what they received stays on screen, and nothing is a traceback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from history.stores.json_store import JsonHistoryStore
from tests.apptest import button, chat, saved, send
from tests.disks import can_fill_disks, small_disk
from tests.openai_server import Script
from tests.test_app_controls import popover_widget

CAUSES = {"full": "full", "read-only": "read-only"}
DATA = Path(__file__).parent / "data"


@pytest.fixture(params=sorted(CAUSES))
def fault(request, history_dir):
    """(name, break the disk, mend it) for a history folder on a small disk of its own."""
    if request.param == "full" and not can_fill_disks():
        pytest.skip("a full disk needs root, to mount a tmpfs of its own (CI runs as root)")
    with small_disk(history_dir, "4m") as disk:
        breaks = {"full": disk.fill, "read-only": disk.read_only}[request.param]
        mends = {"full": disk.free, "read-only": disk.writable}[request.param]
        yield request.param, breaks, mends


def errors(at) -> str:
    """Every error message on the page, main and sidebar."""
    return " ".join(e.value for e in at.error)


def assert_told(at, cause: str) -> None:
    assert not at.exception, at.exception[0].value if at.exception else ""
    text = errors(at)
    assert CAUSES[cause] in text.lower(), f"the message does not say the disk is {cause}: {text!r}"


def started_chat(new_visit):
    at = send(new_visit(), "first question")
    assert chat(at)[-1] == ("assistant", "Echo: first question")
    return at


def on_disk(history_dir: Path) -> list[dict]:
    [conversation] = saved(history_dir)
    return conversation["messages"]


def test_send_keeps_the_message_in_the_box(new_visit, history_dir, fault):
    cause, breaks, mends = fault
    at = started_chat(new_visit)
    breaks()
    send(at, "my carefully typed question")
    assert_told(at, cause)
    assert at.chat_input[0].value == "my carefully typed question"
    assert len(on_disk(history_dir)) == 2
    mends()
    send(at, at.chat_input[0].value)
    assert chat(at)[-1] == ("assistant", "Echo: my carefully typed question")


def break_when_asked(openai_server, breaks) -> threading.Thread:
    """Break the disk once the model is asked: the user's message is saved, the reply not yet."""
    asked = len(openai_server.chat_requests)

    def watch() -> None:
        deadline = time.monotonic() + 10
        while len(openai_server.chat_requests) == asked and time.monotonic() < deadline:
            time.sleep(0.01)
        breaks()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("action", ["send", "regenerate"])
def test_a_reply_that_cannot_be_saved_stays_on_screen_and_saves_later(
    new_visit, openai_server, history_dir, fault, action
):
    cause, breaks, mends = fault
    at = started_chat(new_visit)
    openai_server.enqueue(Script("A reply worth keeping.", first_token_delay=0.5))
    watcher = break_when_asked(openai_server, breaks)
    if action == "send":
        send(at, "second question")
    else:
        button(at, "Regenerate").click().run()
    watcher.join(timeout=10)
    assert_told(at, cause)
    assert "not saved yet" in errors(at)
    assert chat(at)[-1] == ("assistant", "A reply worth keeping.")
    assert [b.label for b in at.download_button if b.label == "Download the reply"]
    mends()
    button(at, "Save again").click().run()
    assert not at.exception and "not saved yet" not in errors(at)
    assert on_disk(history_dir)[-1]["content"] == "A reply worth keeping."
    assert chat(at)[-1] == ("assistant", "A reply worth keeping.")


def assert_typed_text_survives(at, cause: str, kind: str, key_prefix: str, text: str, label: str) -> None:
    """Type into a popover's field and press its button: refused in words, the text still there."""
    popover_widget(at, kind, key_prefix).set_value(text)
    button(at, label).click().run()
    assert_told(at, cause)
    assert popover_widget(at, kind, key_prefix).value == text


def test_edit_keeps_the_edited_text(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = started_chat(new_visit)
    breaks()
    assert_typed_text_survives(at, cause, "text_area", "edit_", "my edited question", "Save and resend")
    assert on_disk(history_dir)[0]["content"] == "first question"


def test_rename_keeps_the_typed_title(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = started_chat(new_visit)
    breaks()
    assert_typed_text_survives(at, cause, "text_input", "title_", "My new title", "Save title")
    assert saved(history_dir)[0]["title"] == "first question"


def test_thumbs_say_they_were_not_saved(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = started_chat(new_visit)
    breaks()
    at.feedback[0].set_value(1).run()
    assert_told(at, cause)
    assert "feedback" not in on_disk(history_dir)[-1]


def test_settings_keep_what_was_typed(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = started_chat(new_visit)
    breaks()
    at.sidebar.text_area[0].set_value("Answer like a pirate.")
    next(b for b in at.sidebar.button if b.label == "Save settings").click().run()
    assert_told(at, cause)
    assert at.sidebar.text_area[0].value == "Answer like a pirate."
    assert "settings" not in saved(history_dir)[0]


def test_delete_is_refused_on_a_read_only_disk_and_still_works_on_a_full_one(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = started_chat(new_visit)
    breaks()
    button(at, "Delete conversation").click().run()
    if cause == "full":  # moving a file to the trash takes no space
        assert not at.exception and saved(history_dir) == []
        button(at, "Undo").click().run()
        assert chat(at)[0] == ("user", "first question")
        return
    assert_told(at, cause)
    assert len(on_disk(history_dir)) == 2
    assert chat(at)[0] == ("user", "first question")


def test_import_says_why_nothing_came_in(new_visit, history_dir, fault):
    cause, breaks, _ = fault
    at = new_visit()
    breaks()
    button(at, "Load History").click().run()
    data = (DATA / "chatgpt_conversations.json").read_bytes()
    at.file_uploader[0].upload("conversations.json", data, "application/json").run()
    assert_told(at, cause)
    assert saved(history_dir) == []


def test_a_busy_conversation_lock_is_explained_quickly(new_visit, history_dir):
    """Another process holds the conversation's lock: the send gives up within seconds, with words."""
    import subprocess
    import sys

    at = started_chat(new_visit)
    [conversation] = saved(history_dir)
    lock = JsonHistoryStore(history_dir).lock_path(conversation["id"])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
         "with FileLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        send(at, "are you there?")
        assert time.monotonic() - started < 15, "the page waited too long for the lock"
        assert not at.exception
        assert "another window" in errors(at).lower()
        assert at.chat_input[0].value == "are you there?"
    finally:
        holder.kill()
        holder.wait()
    send(at, at.chat_input[0].value)
    assert chat(at)[-1] == ("assistant", "Echo: are you there?")
