"""The sidebar on every page: New Session, Load History, Start Fresh, and this conversation's settings."""

from __future__ import annotations

import streamlit as st

from app_pages.safe_text import code, note, plain
from app_pages.session import session
from app_pages.shared import App, show_history, start_fresh
from chatbot.conversation_settings import ConversationSettings, settings_of
from chatbot.errors import ChatError
from history.errors import HistoryError
from history.models import Conversation


@st.cache_data(ttl=300, show_spinner=False)
def server_models(_provider, backend_key: tuple) -> list[str]:
    """The models the server lists, asked at most every five minutes; none if it does not answer."""
    try:
        return _provider.list_models()
    except ChatError:
        return []


def close_dialog() -> None:
    session().dialog_open = False


@st.dialog("New Session", on_dismiss=close_dialog)
def new_session_dialog(app: App) -> None:
    st.write("Load a saved conversation, or start a fresh one? The current one stays saved.")
    load_column, fresh_column = st.columns(2)
    if load_column.button("Load History", key="dialog_load_history", width="stretch"):
        close_dialog()
        show_history()
        st.rerun()
    if fresh_column.button("Start Fresh", key="dialog_start_fresh", type="primary", width="stretch"):
        close_dialog()
        start_fresh(app)
        st.rerun()


def settings_form(app: App, conversation: Conversation) -> None:
    """The conversation's own model, temperature and system prompt, saved with it."""
    own = settings_of(conversation)
    with st.form(f"settings-{conversation.id}", border=False):
        current = app.service.model_for(conversation)
        listed = server_models(app.provider, (app.provider.backend, app.settings.openai_base_url))
        listed = [model for model in listed if app.service.allows(model)]
        if listed:
            options = listed if current in listed else [current, *listed]
            chosen = st.selectbox("Model", options, index=options.index(current))
        else:
            chosen = st.text_input("Model", value=current, help="The server did not list its models.")
        temperature = st.number_input(
            "Temperature", min_value=0.0, max_value=2.0, step=0.1, value=own.temperature,
            placeholder="the model's default", help="Lower is more focused, higher more varied.",
        )
        if app.service.lock_system_prompt:
            prompt = own.system_prompt or ""  # kept as saved, and not sent
            st.caption(note(locked_prompt_note(app, conversation)))
        else:
            prompt = st.text_area(
                "System prompt", value=own.system_prompt or "",
                placeholder=app.service.system_prompt or "none", help="Leave empty for the app's default.",
            )
        if st.form_submit_button("Save settings", icon=":material/save:"):
            try:
                options = ConversationSettings.from_form(temperature, prompt)
                session().conversation = app.service.configure(conversation, chosen, options)
                st.toast("Settings saved for this conversation.", icon=":material/check:")
            except HistoryError as error:  # the form keeps what was typed, to save again
                st.error(plain(error.message))
            except ValueError as error:
                st.error(plain(str(error)))
    st.caption(plain(app.service.context_estimate(session().conversation).describe()))


def locked_prompt_note(app: App, conversation: Conversation) -> str:
    """What the settings say instead of the System prompt field when CHATBOT_LOCK_SYSTEM_PROMPT is on."""
    text = ":material/lock: The system prompt is set by the app (CHATBOT_LOCK_SYSTEM_PROMPT)."
    if app.service.own_system_prompt(conversation):
        text += " This conversation's own system prompt is ignored."
    return text


def render(app: App) -> None:
    with st.sidebar:
        st.header(plain(app.profile.name, one_line=True))
        st.caption(f"**{plain(session().conversation.title, one_line=True)}**")
        if st.button("New Session", icon=":material/add_comment:", width="stretch"):
            session().dialog_open = True
        if st.button("Load History", icon=":material/history:", width="stretch"):
            show_history()
        if st.button("Start Fresh", icon=":material/edit_square:", width="stretch"):
            start_fresh(app)
        with st.expander("Conversation settings", icon=":material/tune:"):
            settings_form(app, session().conversation)
        st.divider()
        model = app.service.model_for(session().conversation) or "none"
        st.caption(f"Answering: **{plain(app.provider.backend)}** · {code(model)}")
        if app.service.refuses_model(session().conversation):
            st.caption(
                ":material/block: This conversation was saved with a model this app does not allow "
                f"(CHATBOT_ALLOWED_MODELS), so {code(model)} answers it instead."
            )
        if app.access.signed_in:
            who = st.user.get("name") or st.user.get("email") or "you"
            st.caption(f"Signed in as {plain(who, one_line=True)}")
            st.button("Sign out", on_click=st.logout)
        elif app.access.login_available:
            st.button("Sign in to keep your history private", on_click=st.login)
        for problem in app.store.unreadable():
            st.warning(plain(problem.message))
    if session().dialog_open:
        new_session_dialog(app)
