"""The offline path end to end: with no key the bundled model answers; llama.cpp's server works too."""

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bench.llama_server import run_llama_server, served_models
from chatbot.local_model import find_model_file
from chatbot.providers.base import ChatRequest
from chatbot.providers.openai_provider import OpenAIProvider

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def test_with_no_key_the_bundled_model_answers_in_the_app(history_dir):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "local" in at.sidebar.caption[-1].value and "SmolLM2" in at.sidebar.caption[-1].value
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert not at.exception and not at.error
    [_, assistant] = at.chat_message
    assert assistant.name == "assistant" and len(assistant.markdown[0].value.split()) >= 2
    [saved] = [json.loads(p.read_text()) for p in history_dir.glob("*.json")]
    assert saved["messages"][1]["model"].startswith("SmolLM2")
    assert saved["messages"][1]["finish_reason"] in ("stop", "length")


def test_without_the_local_model_the_app_says_how_to_configure_a_server(history_dir):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["CHATBOT_LOCAL_MODEL_PATH"] = "/nonexistent/model.gguf"
    at.run()
    at.chat_input[0].set_value("hello").run()
    assert not at.exception
    message = at.error[0].value
    assert "OPENAI_API_KEY" in message and "OPENAI_BASE_URL" in message
    assert [m.markdown[0].value for m in at.chat_message] == ["hello"]


def test_the_openai_provider_chats_with_llama_cpp_server():
    with run_llama_server(find_model_file()) as base_url:
        provider = OpenAIProvider("not-needed", base_url, timeout=120, max_retries=0)
        [model] = served_models(base_url)
        reply = provider.execute(
            ChatRequest([{"role": "user", "content": "What is the capital of France?"}], model, max_tokens=24)
        )
        deltas = list(reply)
    assert len(deltas) > 1 and reply.text.strip()
    assert reply.finish_reason in ("stop", "length") and reply.error is None
