"""Settings precedence and validation, as the README documents them."""

from pathlib import Path

import pytest

from chatbot.settings import DEFAULT_OPENAI_MODEL, PLACEHOLDER_API_KEY, SettingsError, load_settings


def test_defaults_use_the_local_model_and_data_history(monkeypatch):
    monkeypatch.delenv("CHATBOT_HISTORY_DIR")
    settings = load_settings(environ={})
    assert settings.history_dir == Path("data/history")
    assert settings.backend == "auto" and not settings.uses_openai
    assert settings.model is None and settings.api_key_or_placeholder is None


def test_argument_beats_secrets_beats_environment():
    environ = {"CHATBOT_MODEL": "from-env", "OPENAI_BASE_URL": "http://env/v1", "CHATBOT_TIMEOUT": "5"}
    secrets = {"CHATBOT_MODEL": "from-secrets", "CHATBOT_TIMEOUT": 7}
    settings = load_settings({"CHATBOT_MODEL": "explicit"}, secrets, environ)
    assert settings.model == "explicit"
    assert settings.timeout == 7.0
    assert settings.openai_base_url == "http://env/v1"
    assert load_settings(None, secrets, environ).model == "from-secrets"


def test_empty_values_count_as_unset():
    settings = load_settings(secrets={"CHATBOT_MODEL": ""}, environ={"CHATBOT_MODEL": "env-model"})
    assert settings.model == "env-model"


def test_base_url_without_key_sends_a_placeholder_key():
    settings = load_settings(environ={"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    assert settings.uses_openai
    assert settings.api_key_or_placeholder == PLACEHOLDER_API_KEY


def test_backend_can_be_forced_and_is_validated():
    assert load_settings(environ={"OPENAI_API_KEY": "sk-x", "CHATBOT_BACKEND": "local"}).uses_openai is False
    assert load_settings(environ={"CHATBOT_BACKEND": "openai"}).uses_openai is True
    with pytest.raises(SettingsError, match="CHATBOT_BACKEND must be one of auto, openai, local"):
        load_settings(environ={"CHATBOT_BACKEND": "gpt"})


def test_bad_numbers_name_the_setting():
    with pytest.raises(SettingsError, match="CHATBOT_TIMEOUT"):
        load_settings(environ={"CHATBOT_TIMEOUT": "soon"})
    with pytest.raises(SettingsError, match="CHATBOT_REQUIRE_LOGIN"):
        load_settings(environ={"CHATBOT_REQUIRE_LOGIN": "maybe"})


def test_the_key_never_appears_in_the_settings_repr():
    settings = load_settings(environ={"OPENAI_API_KEY": "sk-secret-value-123"})
    assert "sk-secret-value-123" not in repr(settings)
    assert DEFAULT_OPENAI_MODEL


def test_the_trash_keeps_30_days_by_default_0_keeps_it_until_deleted_forever():
    assert load_settings(environ={}).trash_days == 30
    assert load_settings(environ={"CHATBOT_TRASH_DAYS": "7"}).trash_days == 7
    assert load_settings(secrets={"CHATBOT_TRASH_DAYS": 0}, environ={}).trash_days == 0
    with pytest.raises(SettingsError, match="CHATBOT_TRASH_DAYS"):
        load_settings(environ={"CHATBOT_TRASH_DAYS": "-1"})
    with pytest.raises(SettingsError, match="CHATBOT_TRASH_DAYS"):
        load_settings(environ={"CHATBOT_TRASH_DAYS": "a month"})
