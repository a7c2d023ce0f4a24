"""The API key never reaches history files, exports, logs, error text or the page."""

import io
import logging
import zipfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from history.stores.json_store import JsonHistoryStore
from history.transfer.export import all_conversations_zip, conversation_json, conversation_markdown
from tests.apptest import shown
from tests.openai_server import Script

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
CANARY = "sk-canary-4f9d2c7e1b8a6053"


def page_text(at: AppTest) -> str:
    """Everything the app sent to the browser, as the protobuf text of every element."""
    texts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            texts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(texts)


def test_the_key_appears_in_no_artifact(openai_server, history_dir, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_API_KEY"] = CANARY
    at.secrets["OPENAI_BASE_URL"] = openai_server.base_url
    at.secrets["CHATBOT_MAX_RETRIES"] = 0
    pages = [page_text(at.run())]
    turns = [
        ("a normal turn", None),
        ("a refused turn", Script(status=401, message=f"Incorrect API key provided: {CANARY}")),
        ("a rejected turn", Script(status=400, message=f"Bad request for key {CANARY}")),
        ("a dropped turn", Script("cut", drop_after=1)),
    ]
    for text, script in turns:
        if script:
            openai_server.enqueue(script)
        pages.append(page_text(at.chat_input[0].set_value(text).run()))

    assert openai_server.chat_requests[0].headers["authorization"] == f"Bearer {CANARY}"
    assert "Check OPENAI_API_KEY" in pages[2]
    shown_text = shown(pages[3].replace("\\\\", "\\"))  # protobuf's text form doubles each backslash
    assert "Bad request for key [redacted]" in shown_text, "the server's own words are shown, redacted"
    artifacts = {f"page after step {n}": page for n, page in enumerate(pages)}
    artifacts["logs"] = caplog.text
    artifacts["output"] = "".join(capfd.readouterr())
    store = JsonHistoryStore(history_dir)
    [conversation] = [store.get(summary.id) for summary in store.list()]
    artifacts["export zip"] = zipfile.ZipFile(io.BytesIO(all_conversations_zip(store))).read(
        f"{conversation.id}.json"
    ).decode("utf-8")
    artifacts["export json"] = conversation_json(conversation).decode("utf-8")
    artifacts["export markdown"] = conversation_markdown(conversation)
    for path in history_dir.rglob("*"):
        if path.is_file():
            artifacts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert "a dropped turn" in pages[-1] and any("a rejected turn" in t for t in artifacts.values())
    leaks = [name for name, text in artifacts.items() if CANARY in text or CANARY[:12] in text]
    assert leaks == []
