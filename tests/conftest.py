"""Shared fixtures: every test stores history under tmp_path and reaches nothing beyond 127.0.0.1."""

from __future__ import annotations

import pytest
import streamlit as st

from chatbot.settings import SETTING_NAMES
from history.stores import folder_index
from tests.apptest import visit
from tests.openai_server import OpenAIServer

pytest_plugins = [
    "tests.backends",  # the history stores to test: backend, sql_backend, make_backend
    "tests.pg_server",  # the test PostgreSQL server itself, to restart, stop and freeze: postgres_server
]


@pytest.fixture(autouse=True)
def history_dir(tmp_path, monkeypatch):
    """Point CHATBOT_HISTORY_DIR, the setting users set, at a fresh folder; drop the machine's settings."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "history"
    monkeypatch.setenv("CHATBOT_HISTORY_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def fresh_process_cache():
    """Each test starts like a new process, with no folder index open."""
    folder_index.forget_all()
    yield
    folder_index.forget_all()


@pytest.fixture(scope="session")
def openai_server_session():
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(openai_server_session):
    """A real OpenAI-compatible server on 127.0.0.1, emptied before each test."""
    openai_server_session.reset()
    return openai_server_session


@pytest.fixture
def fresh_backend():
    """Ask the model server anew: no provider, model or model list cached by an earlier test."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def new_visit(openai_server):
    """Open the app in a new browser session (AppTest), answering from the test server."""
    return lambda **secrets: visit(openai_server.base_url, **secrets)
