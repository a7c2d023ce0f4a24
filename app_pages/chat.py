"""The Chat page: the conversation, its controls, and the reply streaming in."""

from __future__ import annotations

import streamlit as st

from app_pages.reply_view import attach, bubble, follow, render_unsaved, watch_elsewhere
from app_pages.safe_text import markdown, note, plain
from app_pages.session import MESSAGE_WINDOW, session
from app_pages.shared import (
    App,
    delete,
    export_buttons,
    guarded,
    notify,
    reload_after,
    rename,
    start_fresh,
)
from chatbot.chat import awaiting_reply, last_user_index, pending_action
from chatbot.errors import ChatError
from chatbot.message_notes import is_streaming, reply_details, status_note, visible_messages
from history.errors import ConversationChanged, ConversationNotFound, HistoryError, HistoryUnavailable
from history.models import Conversation

FEEDBACK_VALUES = {"up": 1, "down": 0}  # st.feedback's thumbs: 1 is up, 0 is down


@guarded
def save_feedback(app: App, index: int, key: str) -> None:
    rating = {value: name for name, value in FEEDBACK_VALUES.items()}.get(st.session_state[key])
    try:
        session().conversation = app.service.set_feedback(session().conversation, index, rating)
    except ConversationChanged as error:
        reload_after(app, error)


def render_welcome(app: App) -> None:
    """An empty chat: the profile's greeting, and its starter prompts to click."""
    if app.profile.greeting:
        with bubble(app, "assistant"):
            st.markdown(markdown(app.profile.greeting))
    if app.profile.starters:
        columns = st.columns(min(len(app.profile.starters), 3))
        for number, starter in enumerate(app.profile.starters):
            columns[number % len(columns)].button(
                plain(starter, one_line=True), key=f"starter_{number}", icon=":material/chat_bubble:",
                width="stretch", on_click=session().update, kwargs={"starter": starter},
            )


def render_message(app: App, message: dict, index: int | None = None) -> None:
    with bubble(app, message["role"]):
        st.markdown(markdown(message["content"]))
        notes = [note for note in (status_note(message), reply_details(message)) if note]
        if notes:
            st.caption(" · ".join(note(text) for text in notes))
        earlier = message.get("alternatives") or []
        if earlier:
            with st.expander(f"Earlier versions ({len(earlier)})", icon=":material/history:"):
                for number, version in enumerate(earlier, 1):
                    st.caption(f"Version {number:d}")
                    st.markdown(markdown(version.get("content", "")))
        if index is not None and message["role"] == "assistant":
            key = f"feedback_{session().conversation.id}_{index}_{message['created_at']}"
            st.feedback(
                "thumbs",
                key=key,
                default=FEEDBACK_VALUES.get(message.get("feedback")),
                on_change=save_feedback,
                args=(app, index, key),
            )


def send(app: App, prompt: str, replying: bool) -> bool:
    """Save the user's message; on a refusal, say why and put the message back in the box."""
    if replying:
        refused = ChatError("reply_in_progress").message
    else:
        try:
            session().conversation = app.service.add_user_message(session().conversation, prompt)
            session().take("carry_over")
            return True
        except ChatError as error:
            refused = error.message
            if error.kind == "conversation_full":
                session().carry_over = prompt
        except HistoryError as error:
            refused = error.message
            if isinstance(error, ConversationNotFound):
                notify(error.message, "error", undo=session().conversation.id, label="Restore")
                refused = None
    session().error = refused
    session().returned_prompt = prompt
    st.rerun()
    return False


def continue_fresh(app: App) -> None:
    """Start a new conversation with the message a full one could not take, ready to send."""
    prompt = session().take("carry_over") or ""
    start_fresh(app)
    session().go_to = None
    session().returned_prompt = prompt


def render_header(app: App, conversation: Conversation) -> None:
    st.subheader(plain(conversation.title, one_line=True))
    try:
        saved = app.store.exists(conversation.id)
    except HistoryUnavailable:  # the conversation stays on screen; its controls come back with the history
        saved = False
    if not saved:
        return
    rename_column, export_column, delete_column = st.columns(3)
    with rename_column.popover("Rename", icon=":material/edit:", width="stretch"):
        key = f"title_{conversation.id}"
        st.text_input("Title", value=conversation.title, key=key, max_chars=200)
        st.button("Save title", on_click=rename, args=(app, conversation.id, key))
    with export_column.popover("Export", icon=":material/download:", width="stretch"):
        export_buttons(app, conversation)
    with delete_column.popover("Delete", icon=":material/delete:", width="stretch"):
        st.write("Delete this conversation? You can restore it from History → Recently deleted.")
        st.button("Delete conversation", type="primary", on_click=delete, args=(app, conversation))


@guarded
def edit_last(app: App, key: str) -> None:
    try:
        current = session()
        current.conversation = app.service.edit_last_user_message(current.conversation, st.session_state[key])
        current.pending = "reply"
    except ChatError as error:
        session().error = error.message
    except ConversationChanged as error:
        reload_after(app, error)


def render_turn_controls(app: App, conversation: Conversation) -> None:
    """Retry, Regenerate and Edit under the last message."""
    columns = st.columns(3)
    if awaiting_reply(conversation):
        columns[0].button(
            "Retry", icon=":material/refresh:", on_click=session().update, kwargs={"pending": "reply"}
        )
    elif pending_action(conversation, "regenerate"):
        columns[0].button(
            "Regenerate", icon=":material/autorenew:", on_click=session().update,
            kwargs={"pending": "regenerate"},
        )
    index = last_user_index(conversation)
    if index is not None:
        with columns[1].popover("Edit", icon=":material/edit_note:"):
            key = f"edit_{conversation.id}_{index}"
            st.text_area("Your last message", value=conversation.messages[index]["content"], key=key)
            st.button("Save and resend", type="primary", on_click=edit_last, args=(app, key))


def render(app: App) -> None:
    """The chat; a history failure is shown in words and the chat box stays, with what was typed."""
    box = ChatBox()
    try:
        render_chat(app, box)
    except HistoryError as error:
        st.error(plain(error.message), icon=":material/error:")
        if not box.drawn:
            box.draw()


class ChatBox:
    """The message box at the bottom, drawn once per run."""

    drawn = False

    def draw(self) -> str | None:
        if session().returned_prompt is not None:  # put a refused message back in the box
            st.session_state.prompt = session().take("returned_prompt")
        self.drawn = True
        return st.chat_input("Message the assistant", key="prompt", submit_mode="disable")


def render_chat(app: App, box: ChatBox) -> None:
    job = attach(app)
    following = job is not None and job.live
    conversation = session().conversation
    render_header(app, conversation)
    pending = None if following else pending_action(conversation, session().take("pending"))
    messages = conversation.messages
    if following:
        messages = job.history
    elif pending == "regenerate" or (job is not None and job.unsaved and is_streaming(messages[-1])):
        messages = messages[:-1]  # the reply being replaced, or the unsaved reply's last checkpoint
    hidden, shown = visible_messages(messages, session().window)
    if hidden and st.button(
        f"Show {min(hidden, MESSAGE_WINDOW):d} earlier messages ({hidden:d} hidden)",
        icon=":material/expand_less:",
    ):
        session().window += MESSAGE_WINDOW
        st.rerun()
    if not conversation.messages and not st.session_state.get("prompt") and session().starter is None:
        render_welcome(app)  # until the first message is sent, even in the run that sends it
    for index, message in shown:
        render_message(app, message, index)
    if job is not None and job.unsaved:
        render_unsaved(app, job)
    if session().error:
        st.error(plain(session().error), icon=":material/error:")
    if session().carry_over is not None:
        st.button("Continue in a new conversation", icon=":material/add_comment:", type="primary",
                  on_click=continue_fresh, args=(app,))
    if not pending and not following and not (job is not None and job.unsaved):
        render_turn_controls(app, conversation)
    if conversation.messages and is_streaming(conversation.messages[-1]) and not following:
        watch_elsewhere(app, conversation)
    prompt = box.draw() or session().take("starter")
    if prompt and send(app, prompt, replying=following):
        render_message(app, session().conversation.messages[-1])
        pending = "reply"
    if pending == "reply":
        try:
            scripted = app.service.scripted_reply(session().conversation)
        except HistoryError as error:
            session().error, scripted = error.message, None
            pending = None
        if scripted is not None:  # answered at once from the bot profile, without the model
            session().conversation, session().error = scripted, None
            st.rerun()
    if pending:
        session().error = None
        job = app.replies.start(app.service, session().conversation, regenerate=pending == "regenerate")
        following = True
    if following:  # last: the chat box above stays usable while the reply streams in
        follow(app, job)
