"""What one browser session keeps between script runs: one typed object instead of string keys in every page.

Widgets keep their own values in `st.session_state` under their keys; everything the app itself remembers
is a field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from chatbot.replies import ReplyJob
from history.models import Conversation

KEY = "chatbot_session"
MESSAGE_WINDOW = 50  # messages rendered at first; long chats show earlier ones on request
HISTORY_PAGE = 100  # rows of the History table drawn at first, and added by each "Show more"


@dataclass
class Notice:
    """A message shown once, at the top of the next run; `undo` is a deleted id to offer back."""

    kind: str
    text: str
    undo: str | None = None
    label: str = "Undo"


@dataclass
class Session:
    """The browser session's own state, from its first run to its last."""

    folder: str | None = None  # whose history is shown: another sign-in in this browser starts a new visit
    conversation: Conversation | None = None
    error: str | None = None  # under the chat until the next turn starts
    window: int = MESSAGE_WINDOW  # how many of the newest messages are drawn
    pending: str | None = None  # "reply" or "regenerate", asked for by a button
    go_to: str | None = None  # the page to switch to, once
    notice: Notice | None = None
    returned_prompt: str | None = None  # a refused message, put back in the box on the next run
    carry_over: str | None = None  # a message a full conversation could not take
    starter: str | None = None  # a starter button's question, sent by the next run
    seen_reply: ReplyJob | None = None  # the finished reply already taken into `conversation`
    dialog_open: bool = False
    table_key: int = 0  # a new value draws the History table afresh, with no row selected
    upload_key: int = 0  # a new value empties the import uploader
    history_rows: dict[str, list[str]] = field(default_factory=dict)  # the table's ids as last drawn
    history_shown: int = HISTORY_PAGE  # rows of the History table drawn

    def update(self, **changes) -> None:
        """Set several fields at once: a widget callback's `kwargs`."""
        for name, value in changes.items():
            setattr(self, name, value)

    def take(self, name: str):
        """A one-shot field's value, leaving its default behind."""
        value = getattr(self, name)
        setattr(self, name, getattr(Session(), name))
        return value


def session() -> Session:
    """This browser session's state, created on its first run."""
    return st.session_state.setdefault(KEY, Session())
