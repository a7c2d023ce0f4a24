"""The chat UI: Streamlit wiring only; every decision lives in chatbot/ and history/."""

from __future__ import annotations

import contextlib

import streamlit as st

from chatbot.access import resolve_access
from chatbot.chat import (
    ChatService,
    awaiting_reply,
    last_user_index,
    pending_action,
    reply_details,
    status_note,
    visible_messages,
)
from chatbot.conversation_settings import ConversationSettings, settings_of
from chatbot.errors import ChatError
from chatbot.providers.base import WAIT_MESSAGE
from chatbot.providers.factory import create_provider, resolve_model
from chatbot.providers.unavailable import UnavailableProvider
from chatbot.settings import Settings, SettingsError, load_settings
from history.export import (
    all_conversations_filename,
    all_conversations_zip,
    conversation_json,
    conversation_markdown,
    export_filename,
)
from history.import_formats import ImportFailed
from history.importers import MAX_IMPORT_BYTES, import_file
from history.json_store import JsonHistoryStore
from history.listing import conversations_table
from history.search import search_table
from history.store import ConversationChanged, ConversationNotFound

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


@st.cache_data(ttl=300, show_spinner=False)
def server_models(_provider, backend_key: tuple) -> list[str]:
    """The models the server lists, asked at most every five minutes; none if it does not answer."""
    try:
        return _provider.list_models()
    except ChatError:
        return []


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
    state.pop("pending", None)


if state.get("folder") != access.folder:  # a new visit, or another user signed in
    state.folder = access.folder
    state.dialog_open = False
    state.table_key = 0
    open_conversation(service.restore_latest())


if "replying_to" in state:  # Stop ended the last run mid-reply: show the reply as it was saved
    with contextlib.suppress(ConversationNotFound):
        state.conversation = service.open(state.pop("replying_to"))


def show_history() -> None:
    state.view = "history"
    state.table_key += 1  # a fresh table starts with no row selected


def close_dialog() -> None:
    state.dialog_open = False


def notify(text: str, kind: str = "success", undo: str | None = None) -> None:
    """A message shown once, at the top of the next run; `undo` is a deleted id to offer back."""
    state.notice = (kind, text, undo)


def reload_after(error: Exception) -> None:
    """Another tab changed the conversation: show it as saved now, and say so."""
    notify(str(error), "warning")
    try:
        state.conversation = service.open(state.conversation.id)
    except ConversationNotFound:
        start_fresh()


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


def settings_form(conversation) -> None:
    """The conversation's own model, temperature and system prompt, saved with it."""
    own = settings_of(conversation)
    with st.form(f"settings-{conversation.id}", border=False):
        current = conversation.model or model
        listed = server_models(provider, (provider.backend, settings.openai_base_url))
        if listed:
            options = listed if current in listed else [current, *listed]
            chosen = st.selectbox("Model", options, index=options.index(current))
        else:
            chosen = st.text_input("Model", value=current, help="The server did not list its models.")
        temperature = st.number_input(
            "Temperature", min_value=0.0, max_value=2.0, step=0.1, value=own.temperature,
            placeholder="the model's default", help="Lower is more focused, higher more varied.",
        )
        prompt = st.text_area(
            "System prompt", value=own.system_prompt or "",
            placeholder=service.system_prompt or "none", help="Leave empty for the app's default.",
        )
        if st.form_submit_button("Save settings", icon=":material/save:"):
            try:
                options = ConversationSettings.from_form(temperature, prompt)
                state.conversation = service.configure(conversation, chosen, options)
                st.toast("Settings saved for this conversation.", icon=":material/check:")
            except ValueError as error:
                st.error(str(error))
    st.caption(service.context_estimate(state.conversation).describe())


with st.sidebar:
    st.header(":material/forum: Chatbot")
    st.caption(f"**{state.conversation.title}**")
    if st.button("New Session", icon=":material/add_comment:", width="stretch"):
        state.dialog_open = True
    if st.button("Load History", icon=":material/history:", width="stretch"):
        show_history()
    if st.button("Start Fresh", icon=":material/edit_square:", width="stretch"):
        start_fresh()
    with st.expander("Conversation settings", icon=":material/tune:"):
        settings_form(state.conversation)
    st.divider()
    st.caption(f"Answering: **{provider.backend}** · `{state.conversation.model or model}`")
    if access.signed_in:
        st.caption(f"Signed in as {st.user.get('name') or st.user.get('email') or 'you'}")
        st.button("Sign out", on_click=st.logout)
    elif access.login_available:
        st.button("Sign in to keep your history private", on_click=st.login)
    for problem in store.unreadable():
        st.warning(problem.message)

if state.dialog_open:
    new_session_dialog()


def show_notice() -> None:
    kind, text, undo = state.pop("notice")
    getattr(st, kind)(text)
    if undo:
        st.button("Undo", icon=":material/undo:", key="undo_delete", on_click=restore, args=(undo,))


def restore(conversation_id: str) -> None:
    """Bring a deleted conversation back from the trash and open it."""
    try:
        store.restore(conversation_id)
        open_conversation(service.open(conversation_id))
    except (ConversationNotFound, FileExistsError) as error:
        notify(f"Could not restore it: {error}", "error")


def import_upload(upload) -> None:
    """Import an uploaded file once, and say what came in and what was skipped."""
    try:
        report = import_file(store, upload.name, upload.getvalue())
        notify(report.summary(), "success" if report.imported else "warning")
    except ImportFailed as error:
        notify(str(error), "error")
    state.upload_key = state.get("upload_key", 0) + 1  # clears the uploader
    state.table_key += 1
    st.rerun()


def render_history_tools() -> None:
    export_column, import_column = st.columns(2)
    export_column.download_button(
        "Download all (zip)", lambda: all_conversations_zip(store), all_conversations_filename(),
        mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
    )
    with import_column.popover("Import", icon=":material/upload_file:"):
        upload = st.file_uploader(
            "ChatGPT export, this app's JSON or zip, the Flask history, or an OpenAI messages list",
            type=["json", "zip"], max_upload_size=MAX_IMPORT_BYTES // 2**20,
            key=f"import_{state.get('upload_key', 0)}",
        )
        if upload is not None:
            import_upload(upload)
    deleted = store.deleted()
    if deleted:
        with st.expander(f"Recently deleted ({len(deleted)})", icon=":material/delete:"):
            for summary in deleted:
                title_column, button_column = st.columns([4, 1])
                title_column.write(summary.title)
                button_column.button(
                    "Restore", key=f"restore_{summary.id}", on_click=restore, args=(summary.id,)
                )


def render_history() -> None:
    st.subheader("Saved conversations")
    query = st.text_input("Search", placeholder="Search every message", icon=":material/search:")
    table = search_table(store, query) if query.strip() else conversations_table(store.list())
    if table.empty:
        st.info(f"No conversation mentions “{query}”." if query.strip() else
                "No saved conversations yet. Start chatting and they will appear here.")
    else:
        event = st.dataframe(
            table,
            key=f"history_table_{state.table_key}_{query}",
            on_select="rerun",
            selection_mode="single-row",
            hide_index=True,
            column_order=("title", "snippet", "updated", "messages", "model", "created"),
            column_config={
                "title": st.column_config.TextColumn("Title", width="large"),
                "snippet": st.column_config.TextColumn("Match", width="large"),
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
    render_history_tools()
    if st.button("Back to chat", icon=":material/arrow_back:"):
        state.view = "chat"
        st.rerun()


def save_feedback(index: int, key: str) -> None:
    rating = {1: "up", 0: "down"}.get(state[key])
    try:
        state.conversation = service.set_feedback(state.conversation, index, rating)
    except ConversationChanged as error:
        reload_after(error)


def render_message(message: dict, index: int | None = None) -> None:
    with st.chat_message(message["role"]):
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
            default = {"up": 1, "down": 0}.get(message.get("feedback"))
            st.feedback("thumbs", key=key, default=default, on_change=save_feedback, args=(index, key))


def stream_reply(regenerate: bool = False) -> None:
    """Stream the reply into the chat, then save what arrived, even if it was cut short."""
    conversation = state.conversation
    state.replying_to = conversation.id  # still set in the next run if Stop ended this one
    if service.must_wait:
        st.info(WAIT_MESSAGE, icon=":material/hourglass_top:")
    reply = service.request_reply(conversation, regenerate=regenerate)
    changed = None
    try:
        with st.chat_message("assistant"):
            st.write_stream(reply)
    finally:  # also on Stop, when session state can no longer be touched: save to the store first
        reply.stop()
        try:
            conversation = service.save_reply(conversation, reply, regenerate=regenerate)
        except ConversationChanged as error:
            changed = error
    del state.replying_to
    state.error = reply.error.message if reply.error else None
    if changed:
        reload_after(changed)
    else:
        state.conversation = conversation
    st.rerun()


def rename_current(key: str) -> None:
    try:
        state.conversation = service.rename(state.conversation.id, state[key])
    except (ValueError, ConversationNotFound) as error:
        notify(str(error), "error")


def delete_current() -> None:
    conversation = state.conversation
    with contextlib.suppress(ConversationNotFound):  # deleted in another tab already
        store.delete(conversation.id)
    start_fresh()
    notify(f"Deleted “{conversation.title}”. Load History → Recently deleted brings it back.",
           undo=conversation.id)


def render_chat_header(conversation) -> None:
    st.subheader(conversation.title)
    if not store.exists(conversation.id):
        return
    rename_column, export_column, delete_column = st.columns(3)
    with rename_column.popover("Rename", icon=":material/edit:", width="stretch"):
        key = f"title_{conversation.id}"
        st.text_input("Title", value=conversation.title, key=key, max_chars=200)
        st.button("Save title", on_click=rename_current, args=(key,))
    with export_column.popover("Export", icon=":material/download:", width="stretch"):
        saved = lambda: store.get(conversation.id)  # noqa: E731 -- read when clicked, not on every rerun
        st.download_button(
            "JSON", lambda: conversation_json(saved()), export_filename(conversation, "json"),
            mime="application/json", icon=":material/data_object:", on_click="ignore",
        )
        st.download_button(
            "Markdown", lambda: conversation_markdown(saved()), export_filename(conversation, "md"),
            mime="text/markdown", icon=":material/description:", on_click="ignore",
        )
    with delete_column.popover("Delete", icon=":material/delete:", width="stretch"):
        st.write("Delete this conversation? You can restore it from Load History → Recently deleted.")
        st.button("Delete conversation", type="primary", on_click=delete_current)


def edit_last(key: str) -> None:
    try:
        state.conversation = service.edit_last_user_message(state.conversation, state[key])
        state.pending = "reply"
    except ChatError as error:
        state.error = error.message
    except ConversationChanged as error:
        reload_after(error)


def render_turn_controls(conversation) -> None:
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
            st.button("Save and resend", type="primary", on_click=edit_last, args=(key,))


def render_chat() -> None:
    conversation = state.conversation
    render_chat_header(conversation)
    pending = pending_action(conversation, state.pop("pending", None))
    messages = conversation.messages[:-1] if pending == "regenerate" else conversation.messages
    hidden, shown = visible_messages(messages, state.window)
    if hidden and st.button(
        f"Show {min(hidden, MESSAGE_WINDOW)} earlier messages ({hidden} hidden)",
        icon=":material/expand_less:",
    ):
        state.window += MESSAGE_WINDOW
        st.rerun()
    for index, message in shown:
        render_message(message, index)
    if state.error:
        st.error(state.error, icon=":material/error:")
    if not pending:
        render_turn_controls(conversation)
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
        pending = "reply"
    if pending:  # after the chat box, so its Stop button shows while the reply streams
        state.error = None
        stream_reply(regenerate=pending == "regenerate")


if "notice" in state:
    show_notice()
if state.view == "history":
    render_history()
else:
    render_chat()
