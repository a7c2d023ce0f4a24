"""The chat UI: Streamlit wiring only; every decision lives in chatbot/ and history/."""

from __future__ import annotations

import streamlit as st

from chatbot.access import resolve_access
from chatbot.chat import ChatService, awaiting_reply, status_note, visible_messages
from chatbot.errors import ChatError
from chatbot.providers.base import WAIT_MESSAGE
from chatbot.providers.factory import create_provider, resolve_model
from chatbot.providers.unavailable import UnavailableProvider
from chatbot.settings import Settings, SettingsError, load_settings
from history.json_store import JsonHistoryStore
from history.listing import conversations_table

st.set_page_config(page_title="Chatbot", page_icon="💬")
state = st.session_state
MESSAGE_WINDOW = 50  # messages rendered at first; long chats show earlier ones on request


def read_secrets() -> dict:
    """st.secrets as a dict; none when the app has no secrets.toml."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # StreamlitSecretNotFoundError is one
        return {}


@st.cache_resource
def get_store(root: str) -> JsonHistoryStore:
    return JsonHistoryStore(root)


@st.cache_resource(show_spinner="Loading the model…")
def get_backend(settings: Settings):
    """The provider and model, built once per process; a failure is not cached, so it is tried again."""
    provider = create_provider(settings)
    return provider, resolve_model(settings, provider)


def backend(settings: Settings):
    try:
        return get_backend(settings)
    except ChatError as error:
        return UnavailableProvider(error), settings.model or "none"


secrets = read_secrets()
try:
    settings = load_settings(secrets=secrets)
except SettingsError as error:
    st.error(str(error))
    st.stop()

access = resolve_access(
    settings.history_dir,
    st.user.to_dict(),
    login_configured="auth" in secrets,
    require_login=settings.require_login,
)
if access.folder is None:
    st.title(":material/forum: Chatbot")
    if access.problem:
        st.error(access.problem)
    else:
        st.info("Sign in to see and continue your conversations.")
        st.button("Sign in", on_click=st.login, type="primary")
    st.stop()

store = get_store(str(access.folder))
provider, model = backend(settings)
service = ChatService(
    store,
    provider,
    model,
    system_prompt=settings.system_prompt_for(provider.backend),
    max_message_chars=settings.max_message_chars,
)


def start_fresh() -> None:
    open_conversation(service.new_conversation())


def open_conversation(conversation) -> None:
    state.conversation = conversation
    state.view = "chat"
    state.error = None
    state.window = MESSAGE_WINDOW


if state.get("folder") != access.folder:  # a new visit, or another user signed in
    state.folder = access.folder
    state.dialog_open = False
    state.table_key = 0
    open_conversation(service.restore_latest())


def show_history() -> None:
    state.view = "history"
    state.table_key += 1  # a fresh table starts with no row selected


def close_dialog() -> None:
    state.dialog_open = False


@st.dialog("New Session", on_dismiss=close_dialog)
def new_session_dialog() -> None:
    st.write("Load a saved conversation, or start a fresh one? The current one stays saved.")
    load_column, fresh_column = st.columns(2)
    if load_column.button("Load History", key="dialog_load_history", width="stretch"):
        close_dialog()
        show_history()
        st.rerun()
    if fresh_column.button("Start Fresh", key="dialog_start_fresh", type="primary", width="stretch"):
        close_dialog()
        start_fresh()
        st.rerun()


with st.sidebar:
    st.header(":material/forum: Chatbot")
    st.caption(f"**{state.conversation.title}**")
    if st.button("New Session", icon=":material/add_comment:", width="stretch"):
        state.dialog_open = True
    if st.button("Load History", icon=":material/history:", width="stretch"):
        show_history()
    if st.button("Start Fresh", icon=":material/edit_square:", width="stretch"):
        start_fresh()
    st.divider()
    st.caption(f"Answering: **{provider.backend}** · `{model}`")
    if access.signed_in:
        st.caption(f"Signed in as {st.user.get('name') or st.user.get('email') or 'you'}")
        st.button("Sign out", on_click=st.logout)
    elif access.login_available:
        st.button("Sign in to keep your history private", on_click=st.login)
    for problem in store.unreadable():
        st.warning(problem.message)

if state.dialog_open:
    new_session_dialog()


def render_history() -> None:
    st.subheader("Saved conversations")
    table = conversations_table(store.list())
    if table.empty:
        st.info("No saved conversations yet. Start chatting and they will appear here.")
    else:
        event = st.dataframe(
            table,
            key=f"history_table_{state.table_key}",
            on_select="rerun",
            selection_mode="single-row",
            hide_index=True,
            column_order=("title", "updated", "messages", "model", "created"),
            column_config={
                "title": st.column_config.TextColumn("Title", width="large"),
                "updated": st.column_config.DatetimeColumn("Updated", format="YYYY-MM-DD HH:mm"),
                "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
                "messages": st.column_config.NumberColumn("Messages"),
                "model": st.column_config.TextColumn("Model"),
            },
        )
        st.caption("Pick a row to open that conversation.")
        if event.selection.rows:
            open_conversation(service.open(table.iloc[event.selection.rows[0]]["id"]))
            st.rerun()
    if st.button("Back to chat", icon=":material/arrow_back:"):
        state.view = "chat"
        st.rerun()


def render_message(message: dict) -> None:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
        note = status_note(message)
        if note:
            st.caption(note)


def stream_reply() -> None:
    """Stream the reply into the chat, then save what arrived, even if it was cut short."""
    if service.must_wait:
        st.info(WAIT_MESSAGE, icon=":material/hourglass_top:")
    reply = service.request_reply(state.conversation)
    try:
        with st.chat_message("assistant"):
            st.write_stream(reply)
    finally:  # also when the user presses Stop: the script ends here, the partial reply is kept
        reply.stop()
        state.conversation = service.save_reply(state.conversation, reply)
        state.error = reply.error.message if reply.error else None
    st.rerun()


def render_chat() -> None:
    conversation = state.conversation
    st.subheader(conversation.title)
    hidden, shown = visible_messages(conversation.messages, state.window)
    if hidden and st.button(
        f"Show {min(hidden, MESSAGE_WINDOW)} earlier messages ({hidden} hidden)",
        icon=":material/expand_less:",
    ):
        state.window += MESSAGE_WINDOW
        st.rerun()
    for message in shown:
        render_message(message)
    retry = False
    if state.error:
        st.error(state.error, icon=":material/error:")
    if awaiting_reply(conversation):
        retry = st.button("Retry", icon=":material/refresh:")
    if "returned_prompt" in state:  # put a refused message back in the box
        state.prompt = state.pop("returned_prompt")
    prompt = st.chat_input("Message the assistant", key="prompt", submit_mode="stop")
    if prompt:
        try:
            state.conversation = service.add_user_message(conversation, prompt)
        except ChatError as error:
            state.error = error.message
            state.returned_prompt = prompt
            st.rerun()
        render_message(state.conversation.messages[-1])
    if prompt or retry:
        state.error = None
        stream_reply()


if state.view == "history":
    render_history()
else:
    render_chat()
