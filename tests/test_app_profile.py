"""The bot profile as a visitor meets it (AppTest): name, greeting, starters, scripted answers, fallback."""

from __future__ import annotations

import pytest

from chatbot.profile import PROFILES_DIR, load_profile
from tests.apptest import button, chat, saved, send, shown
from tests.test_profile import INVALID

SHOP = PROFILES_DIR / "customer_service.toml"
HOURS = load_profile(SHOP).scripted_answer("What are your opening hours?")


def starter_buttons(at) -> list[str]:
    return [b.label for b in at.main.button if b.key and b.key.startswith("starter_")]


@pytest.fixture
def shop_visit(new_visit):
    return lambda **secrets: new_visit(CHATBOT_PROFILE=str(SHOP), **secrets)


def test_the_profile_names_the_bot_greets_and_offers_its_starters(shop_visit):
    at = shop_visit()
    profile = load_profile(SHOP)
    assert at.sidebar.header[0].value == "Acme Outfitters Help"
    assert chat(at) == [("assistant", profile.greeting)]
    assert sorted(starter_buttons(at)) == sorted(profile.starters)


def test_a_starter_is_sent_when_clicked_and_a_scripted_one_is_answered_without_the_model(
    shop_visit, openai_server, history_dir
):
    at = shop_visit()
    button(at, "What are your opening hours?").click().run()
    assert chat(at) == [("user", "What are your opening hours?"), ("assistant", HOURS)]
    assert "Scripted answer" in at.chat_message[-1].caption[0].value
    assert openai_server.chat_requests == []
    [conversation] = saved(history_dir)
    assert conversation["messages"][-1]["source"] == "scripted"
    assert starter_buttons(at) == [], "starters show only on an empty chat"


def test_typed_questions_match_keywords_and_patterns_and_others_go_to_the_model_with_the_persona(
    shop_visit, openai_server, history_dir
):
    profile = load_profile(SHOP)
    at = send(shop_visit(), "Can I get a refund? What's the return policy")
    assert chat(at)[-1] == ("assistant", profile.scripted_answer("What's the return policy"))
    send(at, "where is my ORDER #1234, can I track it?")
    assert chat(at)[-1] == ("assistant", profile.scripted_answer("track my order"))
    assert openai_server.chat_requests == []
    send(at, "Do you sell tents?")
    assert chat(at)[-1] == ("assistant", "Echo: Do you sell tents?")
    body = openai_server.chat_requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": profile.persona}
    sources = [m.get("source") for m in saved(history_dir)[0]["messages"] if m["role"] == "assistant"]
    assert sources == ["scripted", "scripted", None]


def test_the_fallback_answers_when_the_model_cannot_and_the_error_is_still_shown(
    shop_visit, openai_server, history_dir
):
    openai_server.fail_next(500)
    at = send(shop_visit(), "Do you sell tents?")
    assert chat(at) == [("user", "Do you sell tents?"), ("assistant", load_profile(SHOP).fallback)]
    assert "fallback reply" in at.chat_message[-1].caption[0].value
    assert "internal error (500)" in at.error[0].value
    reply = saved(history_dir)[0]["messages"][-1]
    assert reply["source"] == "fallback" and reply["error"] == "server"
    button(at, "Regenerate").click().run()
    assert chat(at)[-1] == ("assistant", "Echo: Do you sell tents?")


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_a_broken_profile_stops_the_app_with_a_message_naming_the_key_and_the_fix(
    new_visit, tmp_path, text, message
):
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    at = new_visit(CHATBOT_PROFILE=str(path))
    assert shown(at.error[0].value).startswith(f"Bot profile '{path}': {message}")
    assert not at.chat_input


def test_a_missing_profile_says_how_to_fix_the_setting(new_visit, tmp_path):
    at = new_visit(CHATBOT_PROFILE=str(tmp_path / "nope.toml"))
    assert "not found" in at.error[0].value and "CHATBOT_PROFILE" in at.error[0].value
