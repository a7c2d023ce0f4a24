"""What the model is sent: the system prompt, then as many of the newest turns as fit."""

from chatbot.prompt import build_messages, estimate_tokens


def turns(count: int, words: int = 50) -> list[dict]:
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"turn {i} " + "word " * words,
            "created_at": "x",
        }
        for i in range(count)
    ]


def test_without_a_budget_everything_is_sent_without_metadata():
    messages = build_messages(turns(4), "Be brief.")
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert len(messages) == 5 and all(set(m) == {"role", "content"} for m in messages)


def test_a_long_chat_is_trimmed_from_the_oldest_turn_and_keeps_the_system_prompt():
    history = [*turns(100), {"role": "user", "content": "the newest question"}]
    messages = build_messages(history, "Be brief.", context_tokens=2048, reply_tokens=256)
    assert messages[0]["role"] == "system"
    assert messages[-1]["content"] == "the newest question"
    assert messages[1]["role"] == "user"
    total = sum(estimate_tokens(m["content"]) + 4 for m in messages)
    assert total <= 2048 - 256
    assert len(messages) < 50


def test_an_oversized_last_message_is_shortened_from_its_start():
    question = "filler " * 5000 + "what is the answer?"
    messages = build_messages(
        [{"role": "user", "content": question}], None, context_tokens=512, reply_tokens=128
    )
    assert len(messages) == 1
    assert messages[0]["content"].endswith("what is the answer?")
    assert estimate_tokens(messages[0]["content"]) <= 512 - 128


def test_saved_system_messages_are_not_sent_twice():
    history = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert build_messages(history, "new") == [
        {"role": "system", "content": "new"},
        {"role": "user", "content": "hi"},
    ]
