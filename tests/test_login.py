"""Private history: each signed-in user sees only their own conversations (AppTest's at.user)."""

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from chatbot.access import resolve_access, user_folder
from chatbot.profile import load_profile
from history.models import Conversation, make_message
from history.stores.backend import history_store
from history.stores.json_store import JsonHistoryStore
from tests.apptest import shown

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32}


def visit(server, user: dict, require_login: bool = False, auth: bool = True) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["OPENAI_BASE_URL"] = server.base_url
    at.secrets["CHATBOT_MAX_RETRIES"] = 0
    if auth:
        at.secrets["auth"] = AUTH
    if require_login:
        at.secrets["CHATBOT_REQUIRE_LOGIN"] = True
    at.user = user
    return at.run()


def alice():
    return {
        "is_logged_in": True,
        "sub": "alice-123",
        "iss": "https://id.example",
        "email": "alice@example.com",
    }


def bob():
    return {"is_logged_in": True, "sub": "bob-456", "iss": "https://id.example", "email": "bob@example.com"}


def titles(at: AppTest) -> list[str]:
    next(b for b in at.button if b.label == "Load History").click().run()
    return at.dataframe[0].value["title"].tolist() if at.dataframe else []


def test_each_signed_in_user_has_their_own_history(openai_server, history_dir):
    at = visit(openai_server, alice())
    at.chat_input[0].set_value("alice's secret plan").run()
    at = visit(openai_server, bob())
    assert [m.markdown[0].value for m in at.chat_message] == [load_profile().greeting]
    at.chat_input[0].set_value("bob's question").run()
    assert titles(visit(openai_server, bob())) == ["bob's question"]
    assert titles(visit(openai_server, alice())) == ["alice's secret plan"]
    folders = sorted(p.name for p in (history_dir / "users").iterdir())
    assert len(folders) == 2 and all("alice" not in f and "bob" not in f for f in folders)
    assert not list(history_dir.glob("*.json")), "nothing lands in the shared folder"


def test_a_users_folder_is_a_hash_of_their_stable_id(tmp_path):
    same = user_folder(tmp_path, {**alice(), "email": "changed@example.com"})
    assert same == user_folder(tmp_path, alice())
    assert same != user_folder(tmp_path, bob())
    assert same.parent == tmp_path / "users" and len(same.name) == 32


def test_require_login_shows_nothing_of_the_history_until_sign_in(openai_server, history_dir):
    shared = visit(openai_server, {"email": "x"}, auth=False)
    shared.chat_input[0].set_value("shared conversation").run()
    at = visit(openai_server, {"is_logged_in": False}, require_login=True)
    assert not at.chat_message and not at.chat_input and not at.dataframe
    assert "Sign in" in [b.label for b in at.button]
    shown = [e.value for e in (*at.markdown, *at.caption, *at.subheader, *at.info)]
    assert shown == ["Sign in to see and continue your conversations."]


def test_require_login_without_auth_settings_says_what_to_add(openai_server):
    at = visit(openai_server, {"is_logged_in": False}, require_login=True, auth=False)
    assert "add an [auth] section" in shown(at.error[0].value)
    assert not at.chat_input


def test_without_login_the_app_is_single_user(tmp_path):
    access = resolve_access(tmp_path, {}, login_configured=False, require_login=False)
    assert access.folder == tmp_path and not access.signed_in and not access.login_available


def old_style_folder(history_dir, user: dict):
    """Where the app kept a signed-in user's history before: a hash of "issuer|subject"."""
    identity = f"{user.get('iss') or ''}|{user.get('sub')}"
    return history_dir / "users" / hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def keep_history_in(folder, title: str) -> None:
    JsonHistoryStore(folder).create(
        Conversation(title=title, model="test-model", messages=[make_message("user", title)])
    )


@pytest.mark.parametrize("require_login", [False, True])
def test_a_login_without_a_subject_is_refused_with_a_message(openai_server, history_dir, require_login):
    shared = visit(openai_server, {"is_logged_in": False})
    shared.chat_input[0].set_value("the shared folder's conversation").run()
    at = visit(openai_server, {"is_logged_in": True, "iss": "https://id.example", "email": "eve@example.com"},
               require_login=require_login)
    assert not at.exception and not at.chat_input and not at.dataframe and not at.chat_message
    [error] = at.error
    assert "did not say who you are" in error.value and "sub" in error.value
    assert "Sign out" in [b.label for b in at.button]
    assert not (history_dir / "users").exists()


def test_identities_that_join_to_the_same_text_get_different_folders(openai_server, history_dir):
    victim = {"is_logged_in": True, "iss": "https://id.example", "sub": "auth0|alice"}
    lookalike = {"is_logged_in": True, "iss": "https://id.example|auth0", "sub": "alice"}
    visit(openai_server, victim).chat_input[0].set_value("victim's private plan").run()
    at = visit(openai_server, lookalike)
    assert [m.markdown[0].value for m in at.chat_message] == [load_profile().greeting]
    assert titles(at) == []
    assert user_folder(history_dir, victim) != user_folder(history_dir, lookalike)


def test_an_existing_users_history_moves_to_their_new_folder(openai_server, history_dir):
    keep_history_in(old_style_folder(history_dir, alice()), "alice's old plan")
    at = visit(openai_server, alice())
    assert [m.markdown[0].value for m in at.chat_message] == ["alice's old plan"]
    assert titles(visit(openai_server, alice())) == ["alice's old plan"]
    assert [p.name for p in (history_dir / "users").iterdir()] == [user_folder(history_dir, alice()).name]


def test_an_old_folder_is_never_given_to_an_identity_that_only_joins_to_the_same_text(
    openai_server, history_dir
):
    victim = {"is_logged_in": True, "iss": "https://id.example", "sub": "auth0|alice"}
    lookalike = {"is_logged_in": True, "iss": "https://id.example|auth0", "sub": "alice"}
    assert old_style_folder(history_dir, victim) == old_style_folder(history_dir, lookalike)
    keep_history_in(old_style_folder(history_dir, victim), "victim's old plan")
    assert titles(visit(openai_server, lookalike)) == []
    assert titles(visit(openai_server, victim)) == ["victim's old plan"]


def test_sessions_signing_in_at_once_move_an_old_history_once(backend, tmp_path):
    """In the JSON folder (a rename) and in a database (an UPDATE of the owner), whatever the timing."""
    history_dir = Path(backend.target) if backend.name == "json" else tmp_path / "history"
    database = None if backend.name == "json" else backend.target
    old_owner = old_style_folder(history_dir, alice()).relative_to(history_dir).as_posix()
    backend.store(old_owner).create(
        Conversation(title="alice's old plan", model="m", messages=[make_message("user", "plan")])
    )
    start = threading.Barrier(8)

    def sign_in(_: int) -> list[str]:
        access = resolve_access(history_dir, alice(), login_configured=True, require_login=False)
        start.wait()
        store = history_store(history_dir, access.folder, database, legacy=access.legacy_folder)
        return [summary.title for summary in store.list()]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(sign_in, range(8)))
    assert seen == [["alice's old plan"]] * 8
    assert backend.store(old_owner).list() == []
    new_owner = user_folder(history_dir, alice()).relative_to(history_dir).as_posix()
    assert [summary.title for summary in backend.store(new_owner).list()] == ["alice's old plan"]
