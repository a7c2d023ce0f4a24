"""What every page uses: the app's objects and the browser session's state over them."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from app_pages.safe_text import plain
from app_pages.session import MESSAGE_WINDOW, Notice, session
from chatbot.access import Access
from chatbot.chat import ChatService
from chatbot.profile import Profile
from chatbot.providers.base import Provider
from chatbot.replies import ReplyWorkers
from chatbot.settings import Settings
from history.errors import ConversationExists, ConversationNotFound, HistoryError
from history.models import Conversation
from history.stores.base import HistoryStore
from history.transfer.export import conversation_json, conversation_markdown, export_filename


def wait_for_history(store: HistoryStore) -> None:
    """While the history's index is built (a first start on a large folder), show how far it got
    instead of a page that seems to hang."""
    if store.progress() is None:
        return
    bar = st.progress(0.0, text="Preparing the history…")
    while (progress := store.progress()) is not None:
        done, total = progress
        bar.progress(done / total, text=f"Preparing the history: {done:,} of {total:,} conversations read…")
        time.sleep(0.25)
    bar.empty()


@dataclass
class App:
    """The objects a run works with, built once per run by streamlit_app.py and passed to each page."""

    settings: Settings
    access: Access
    store: HistoryStore
    provider: Provider
    model: str
    service: ChatService
    profile: Profile
    replies: ReplyWorkers
    pages: dict = field(default_factory=dict)  # "chat", "history", "insights" -> st.Page


def open_conversation(conversation: Conversation) -> None:
    """Show this conversation in the chat, from its newest messages; the chat page is opened next."""
    session().conversation = conversation
    session().error = None
    session().window = MESSAGE_WINDOW
    session().take("pending")
    session().go_to = "chat"


def start_fresh(app: App) -> None:
    open_conversation(app.service.new_conversation())


def show_history() -> None:
    session().table_key += 1  # a fresh table starts with no row selected
    session().go_to = "history"


NOTICES = {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}


def notify(text: str, kind: str = "success", undo: str | None = None, label: str = "Undo") -> None:
    """A message shown once, at the top of the next run; `undo` is a deleted id to offer back."""
    session().notice = Notice(kind, text, undo, label)


def show_notice(app: App) -> None:
    notice = session().take("notice")
    if notice is None:
        return
    NOTICES[notice.kind](plain(notice.text))
    if notice.undo:
        st.button(plain(notice.label, one_line=True), icon=":material/undo:", key="undo_delete",
                  on_click=restore, args=(app, notice.undo))


def guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A widget callback whose history failures become a message, never a traceback; what was typed
    stays in its widget, since a callback's widgets keep their values."""

    @functools.wraps(callback)
    def run(*args, **kwargs) -> None:
        try:
            callback(*args, **kwargs)
        except HistoryError as error:
            notify(error.message, "error")

    return run


@guarded
def restore(app: App, conversation_id: str) -> None:
    """Bring a deleted conversation back from the trash and open it."""
    try:
        app.store.restore(conversation_id)
        open_conversation(app.service.open(conversation_id))
    except (ConversationNotFound, ConversationExists) as error:
        notify(f"Could not restore it: {error.message}", "error")


@guarded
def delete(app: App, conversation: Conversation) -> None:
    """Move a conversation to the trash, offering Undo; the chat moves on to a fresh one if it was open."""
    with contextlib.suppress(ConversationNotFound):  # deleted in another tab already
        app.store.delete(conversation.id)
    if session().conversation.id == conversation.id:
        start_fresh(app)
        session().go_to = None
    notify(f"Deleted “{conversation.title}”. History → Recently deleted brings it back.",
           undo=conversation.id)


@guarded
def rename(app: App, conversation_id: str, key: str) -> None:
    """Give a conversation the title typed in widget `key`; the open chat and the history table follow."""
    try:
        renamed = app.service.rename(conversation_id, st.session_state[key])
    except ValueError as error:  # an empty title; a history failure is @guarded's
        notify(str(error), "error")
        return
    if session().conversation.id == conversation_id:
        session().conversation = renamed
    session().table_key += 1


def export_buttons(app: App, conversation: Conversation, places=(st, st), width: str = "content") -> None:
    """JSON and Markdown downloads of the conversation as saved, read when clicked, not on every rerun."""
    json_place, markdown_place = places
    saved = lambda: app.store.get(conversation.id)  # noqa: E731
    json_place.download_button(
        "JSON", lambda: conversation_json(saved()), export_filename(conversation, "json"),
        mime="application/json", icon=":material/data_object:", on_click="ignore", width=width,
    )
    markdown_place.download_button(
        "Markdown", lambda: conversation_markdown(saved()), export_filename(conversation, "md"),
        mime="text/markdown", icon=":material/description:", on_click="ignore", width=width,
    )


def reload_after(app: App, error: Exception) -> None:
    """Another tab changed the conversation: show it as saved now, and say so."""
    notify(str(error), "warning")
    try:
        session().conversation = app.service.open(session().conversation.id)
    except ConversationNotFound:
        start_fresh(app)
