"""The Chat page: the conversation, its controls, and the reply streaming in."""

from __future__ import annotations

import streamlit as st

from app_pages.shared import MESSAGE_WINDOW, App, delete, export_buttons, reload_after, rename, state
from chatbot.chat import (
    awaiting_reply,
    last_user_index,
    pending_action,
    reply_details,
    status_note,
    visible_messages,
)
from chatbot.errors import ChatError
from chatbot.providers.base import WAIT_MESSAGE
from history.models import Conversation
from history.store import ConversationChanged

FEEDBACK_VALUES = {"up": 1, "down": 0}  # st.feedback's thumbs: 1 is up, 0 is down


def save_feedback(app: App, index: int, key: str) -> None:
    rating = {value: name for name, value in FEEDBACK_VALUES.items()}.get(state[key])
    try:
        state.conversation = app.service.set_feedback(state.conversation, index, rating)
    except ConversationChanged as error:
        reload_after(app, error)


def bubble(app: App, role: str):
    """A chat bubble; the assistant's shows the profile's avatar."""
    return st.chat_message(role, avatar=app.profile.avatar if role == "assistant" else None)


def render_welcome(app: App) -> None:
    """An empty chat: the profile's greeting, and its starter prompts to click."""
    if app.profile.greeting:
        with bubble(app, "assistant"):
            st.markdown(app.profile.greeting)
    if app.profile.starters:
        columns = st.columns(min(len(app.profile.starters), 3))
        for number, starter in enumerate(app.profile.starters):
            columns[number % len(columns)].button(
                starter, key=f"starter_{number}", icon=":material/chat_bubble:", width="stretch",
                on_click=state.update, kwargs={"starter": starter},
            )


def render_message(app: App, message: dict, index: int | None = None) -> None:
    with bubble(app, message["role"]):
        st.markdown(message["content"])
        notes = [note for note in (status_note(message), reply_details(message)) if note]
        if notes:
            st.caption(" · ".join(notes))
        earlier = message.get("alternatives") or []
        if earlier:
            with st.expander(f"Earlier versions ({len(earlier)})", icon=":material/history:"):
                for number, version in enumerate(earlier, 1):
                    st.caption(f"Version {number}")
                    st.markdown(version.get("content", ""))
        if index is not None and message["role"] == "assistant":
            key = f"feedback_{state.conversation.id}_{index}_{message['created_at']}"
            st.feedback(
                "thumbs",
                key=key,
                default=FEEDBACK_VALUES.get(message.get("feedback")),
                on_change=save_feedback,
                args=(app, index, key),
            )


def stream_reply(app: App, regenerate: bool = False) -> None:
    """Stream the reply into the chat, then save what arrived, even if it was cut short."""
    conversation = state.conversation
    state.replying_to = conversation.id  # still set in the next run if Stop ended this one
    if app.service.must_wait:
        st.info(WAIT_MESSAGE, icon=":material/hourglass_top:")
    reply = app.service.request_reply(conversation, regenerate=regenerate)
    changed = None
    try:
        with bubble(app, "assistant"):
            st.write_stream(reply)
    finally:  # also on Stop, when session state can no longer be touched: save to the store first
        reply.stop()
        try:
            conversation = app.service.save_reply(conversation, reply, regenerate=regenerate)
        except ConversationChanged as error:
            changed = error
    del state.replying_to
    state.error = reply.error.message if reply.error else None
    if changed:
        reload_after(app, changed)
    else:
        state.conversation = conversation
    st.rerun()


def render_header(app: App, conversation: Conversation) -> None:
    st.subheader(conversation.title)
    if not app.store.exists(conversation.id):
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


def edit_last(app: App, key: str) -> None:
    try:
        state.conversation = app.service.edit_last_user_message(state.conversation, state[key])
        state.pending = "reply"
    except ChatError as error:
        state.error = error.message
    except ConversationChanged as error:
        reload_after(app, error)


def render_turn_controls(app: App, conversation: Conversation) -> None:
    """Retry, Regenerate and Edit under the last message."""
    columns = st.columns(3)
    if awaiting_reply(conversation):
        columns[0].button(
            "Retry", icon=":material/refresh:", on_click=state.update, kwargs={"pending": "reply"}
        )
    elif pending_action(conversation, "regenerate"):
        columns[0].button(
            "Regenerate", icon=":material/autorenew:", on_click=state.update, kwargs={"pending": "regenerate"}
        )
    index = last_user_index(conversation)
    if index is not None:
        with columns[1].popover("Edit", icon=":material/edit_note:"):
            key = f"edit_{conversation.id}_{index}"
            st.text_area("Your last message", value=conversation.messages[index]["content"], key=key)
            st.button("Save and resend", type="primary", on_click=edit_last, args=(app, key))


def render(app: App) -> None:
    conversation = state.conversation
    render_header(app, conversation)
    pending = pending_action(conversation, state.pop("pending", None))
    messages = conversation.messages[:-1] if pending == "regenerate" else conversation.messages
    hidden, shown = visible_messages(messages, state.window)
    if hidden and st.button(
        f"Show {min(hidden, MESSAGE_WINDOW)} earlier messages ({hidden} hidden)",
        icon=":material/expand_less:",
    ):
        state.window += MESSAGE_WINDOW
        st.rerun()
    if not conversation.messages and not state.get("prompt") and "starter" not in state:
        render_welcome(app)  # until the first message is sent, even in the run that sends it
    for index, message in shown:
        render_message(app, message, index)
    if state.error:
        st.error(state.error, icon=":material/error:")
    if not pending:
        render_turn_controls(app, conversation)
    if "returned_prompt" in state:  # put a refused message back in the box
        state.prompt = state.pop("returned_prompt")
    prompt = st.chat_input("Message the assistant", key="prompt", submit_mode="stop")
    prompt = prompt or state.pop("starter", None)
    if prompt:
        try:
            state.conversation = app.service.add_user_message(conversation, prompt)
        except ChatError as error:
            state.error = error.message
            state.returned_prompt = prompt
            st.rerun()
        render_message(app, state.conversation.messages[-1])
        pending = "reply"
    if pending == "reply":
        scripted = app.service.scripted_reply(state.conversation)
        if scripted is not None:  # answered at once from the bot profile, without the model
            state.conversation, state.error = scripted, None
            st.rerun()
    if pending:  # after the chat box, so its Stop button shows while the reply streams
        state.error = None
        stream_reply(app, regenerate=pending == "regenerate")
