"""Private history: each signed-in user sees only their own conversations (AppTest's at.user)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from chatbot.access import resolve_access, user_folder
from chatbot.profile import load_profile

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
    assert "add an [auth] section" in at.error[0].value
    assert not at.chat_input


def test_without_login_the_app_is_single_user(tmp_path):
    access = resolve_access(tmp_path, {}, login_configured=False, require_login=False)
    assert access.folder == tmp_path and not access.signed_in and not access.login_available
