"""Driving the app with AppTest as a user would: send a message, read the bubbles, click by label."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app_pages.session import KEY as SESSION_KEY
from chatbot.profile import load_profile

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
WELCOME = [("assistant", load_profile().greeting)]  # what an empty chat shows: the default profile's greeting


def visit(base_url: str, **secrets: object) -> AppTest:
    """A new browser session of the app, configured through st.secrets like a deployment."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_BASE_URL"] = base_url
    at.secrets["CHATBOT_MAX_RETRIES"] = 0
    at.secrets["CHATBOT_TIMEOUT"] = 3
    for name, value in secrets.items():
        at.secrets[name] = value
    return at.run()


def go_to(at: AppTest, page: str) -> None:
    """Ask the next run to open `page` ("chat", "history", "insights"), as the app's own links do."""
    at.session_state[SESSION_KEY].go_to = page


def chat(at: AppTest) -> list[tuple[str, str]]:
    """The conversation as the user sees it: (who, text) per bubble."""
    return [(m.name, m.markdown[0].value) for m in at.chat_message]


def send(at: AppTest, text: str) -> AppTest:
    return at.chat_input[0].set_value(text).run()


def saved(history_dir: Path) -> list[dict]:
    """Every conversation file in the history folder, decoded, in file-name (creation) order."""
    return [json.loads(p.read_text("utf-8")) for p in sorted(history_dir.glob("[!.]*.json"))]


def shown(markdown: str) -> str:
    """What a reader sees of Markdown that app_pages.safe_text.plain() escaped: the characters themselves."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)
