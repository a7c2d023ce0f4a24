"""The sidebar on every page: New Session, Load History, Start Fresh, and this conversation's settings."""

from __future__ import annotations

import streamlit as st

from app_pages.shared import App, show_history, start_fresh, state
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
    state.dialog_open = False


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
        current = conversation.model or app.model
        listed = server_models(app.provider, (app.provider.backend, app.settings.openai_base_url))
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
            placeholder=app.service.system_prompt or "none", help="Leave empty for the app's default.",
        )
        if st.form_submit_button("Save settings", icon=":material/save:"):
            try:
                options = ConversationSettings.from_form(temperature, prompt)
                state.conversation = app.service.configure(conversation, chosen, options)
                st.toast("Settings saved for this conversation.", icon=":material/check:")
            except HistoryError as error:  # the form keeps what was typed, to save again
                st.error(error.message)
            except ValueError as error:
                st.error(str(error))
    st.caption(app.service.context_estimate(state.conversation).describe())


def render(app: App) -> None:
    with st.sidebar:
        st.header(app.profile.name)
        st.caption(f"**{state.conversation.title}**")
        if st.button("New Session", icon=":material/add_comment:", width="stretch"):
            state.dialog_open = True
        if st.button("Load History", icon=":material/history:", width="stretch"):
            show_history()
        if st.button("Start Fresh", icon=":material/edit_square:", width="stretch"):
            start_fresh(app)
        with st.expander("Conversation settings", icon=":material/tune:"):
            settings_form(app, state.conversation)
        st.divider()
        model = state.conversation.model or app.model or "none"
        st.caption(f"Answering: **{app.provider.backend}** · `{model}`")
        if app.access.signed_in:
            st.caption(f"Signed in as {st.user.get('name') or st.user.get('email') or 'you'}")
            st.button("Sign out", on_click=st.logout)
        elif app.access.login_available:
            st.button("Sign in to keep your history private", on_click=st.login)
        for problem in app.store.unreadable():
            st.warning(problem.message)
    if state.get("dialog_open"):
        new_session_dialog(app)
