"""The app's entry point: settings, sign-in and the shared objects, then the sidebar and the pages.

Streamlit wiring only: every decision lives in chatbot/ and history/; the pages are in app_pages/.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app_pages import chat, history, insights, sidebar
from app_pages.safe_text import plain
from app_pages.session import session
from app_pages.shared import App, open_conversation, show_notice, wait_for_history
from chatbot.access import Access, resolve_access
from chatbot.chat import ChatService
from chatbot.errors import ChatError
from chatbot.profile import ProfileError, load_profile
from chatbot.providers.factory import create_provider, resolve_model
from chatbot.providers.unavailable import UnavailableProvider
from chatbot.replies import ReplyWorkers
from chatbot.settings import Settings, SettingsError, load_settings
from history.errors import HistoryError
from history.stores.backend import history_store
from history.stores.base import HistoryStore, prepare_in_background
from history.stores.sql_schema import engine_options

st.set_page_config(page_title="Chatbot", page_icon="💬")


def read_secrets() -> dict:
    """st.secrets as a dict; none when the app has no secrets.toml."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # StreamlitSecretNotFoundError is one
        return {}


@st.cache_resource(show_spinner=False)
def get_store(
    history_dir: str, folder: str, database_key: str | None, _database=None, legacy: str | None = None
) -> HistoryStore:
    """The history store, once per process and folder; its index is brought up to date in the background."""
    store = history_store(Path(history_dir), Path(folder), _database, legacy=legacy and Path(legacy))
    prepare_in_background(store)
    return store


def open_history(secrets: dict, settings: Settings, access: Access) -> HistoryStore:
    """The database of [connections.history] in the secrets if there is one, else the JSON folder."""
    folder, legacy = str(access.folder), access.legacy_folder and str(access.legacy_folder)
    configured = secrets.get("connections", {}).get("history")
    if not configured:
        return get_store(str(settings.history_dir), folder, None, legacy=legacy)
    url = configured.get("url") or f"{configured.get('dialect', 'postgresql')}://"
    bounded = engine_options(url)  # bounded waits and pre-ping, unless the secrets set their own
    options = {**bounded, **configured}
    options["connect_args"] = {**bounded.get("connect_args", {}), **configured.get("connect_args", {})}
    engine = st.connection("history", type="sql", **options).engine
    key = engine.url.render_as_string(hide_password=True)
    return get_store(str(settings.history_dir), folder, key, engine, legacy)


@st.cache_resource(show_spinner="Loading the model…")
def get_backend(settings: Settings):
    """The provider and model, built once per process; a failure is not cached, so it is tried again."""
    provider = create_provider(settings)
    return provider, resolve_model(settings, provider)


@st.cache_resource(show_spinner=False)
def get_replies() -> ReplyWorkers:
    """The replies in flight, shared by every browser session of this server process."""
    return ReplyWorkers()


def backend(settings: Settings):
    try:
        return get_backend(settings)
    except ChatError as error:
        return UnavailableProvider(error), settings.model or ""  # no placeholder is saved as a model


secrets = read_secrets()
try:
    settings = load_settings(secrets=secrets)
    profile = load_profile(settings.profile_path)  # read each run, so edits show on the next click
except (SettingsError, ProfileError) as error:
    st.error(plain(str(error)))
    st.stop()
st.set_page_config(page_title=profile.name)

access = resolve_access(
    settings.history_dir,
    st.user.to_dict(),
    login_configured="auth" in secrets,
    require_login=settings.require_login,
)
if access.folder is None:
    st.title(plain(profile.name, one_line=True))
    if access.problem:
        st.error(plain(access.problem))
        if access.signed_in:
            st.button("Sign out", on_click=st.logout)
    else:
        st.info("Sign in to see and continue your conversations.")
        st.button("Sign in", on_click=st.login, type="primary")
    st.stop()

try:
    store = open_history(secrets, settings, access)
except (SQLAlchemyError, HistoryError) as error:  # SchemaTooNew and DatabaseUnreachable are these
    reason = error.message if isinstance(error, HistoryError) else str(error)
    st.error(plain(
        f"Cannot open the history database set in [connections.history]: {reason} Check its url in "
        ".streamlit/secrets.toml (or the app's Secrets on Streamlit Cloud) and that the server is up."
    ))
    st.button("Try again", icon=":material/refresh:", key="open_history_again")
    st.stop()
provider, model = backend(settings)
service = ChatService(
    store,
    provider,
    model,
    system_prompt=settings.system_prompt_for(provider.backend, profile.persona),
    max_message_chars=settings.max_message_chars,
    reply_tokens=settings.max_reply_tokens,
    profile=profile,
    allowed_models=settings.allowed_models,
    lock_system_prompt=settings.lock_system_prompt,
)
app = App(settings, access, store, provider, model, service, profile, get_replies())


def start_visit() -> None:
    """A new visit, or another user signed in: reopen their latest conversation."""
    session().dialog_open = False
    try:
        open_conversation(service.restore_latest())
    except HistoryError as error:
        open_conversation(service.new_conversation())
        session().error = error.message
    session().go_to = None
    session().folder = access.folder


wait_for_history(store)
if session().folder != access.folder:
    start_visit()

app.pages = {
    "chat": st.Page(functools.partial(chat.render, app), title="Chat", icon=":material/chat:",
                    url_path="chat", default=True),
    "history": st.Page(functools.partial(history.render, app), title="History",
                       icon=":material/history:", url_path="history"),
    "insights": st.Page(functools.partial(insights.render, app), title="Insights",
                        icon=":material/insights:", url_path="insights"),
}
page = st.navigation(list(app.pages.values()))
try:
    sidebar.render(app)
except HistoryError as error:  # the page below still works
    st.sidebar.error(plain(error.message), icon=":material/error:")
target = app.pages.get(session().take("go_to") or "")
if target is not None and target.url_path != page.url_path:
    st.switch_page(target)
show_notice(app)
try:
    page.run()
except HistoryError as error:  # every page's history failure, in words, with a way to go on
    st.error(plain(error.message), icon=":material/error:")
    st.button("Try again", icon=":material/refresh:", key="history_try_again")
