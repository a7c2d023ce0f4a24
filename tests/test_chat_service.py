"""ChatService over a real JSON store and a FakeProvider: what is saved on disk, what the model is asked."""

from __future__ import annotations

import json

import pytest

from chatbot.chat import ChatService, last_user_index, pending_action
from chatbot.conversation_settings import ConversationSettings, settings_of
from chatbot.errors import ChatError
from chatbot.message_notes import reply_details, status_note, visible_messages
from chatbot.prompt import MESSAGE_OVERHEAD, estimate_tokens
from history.models import Conversation, make_message
from history.stores.base import ConversationChanged, ConversationNotFound
from history.stores.json_store import JsonHistoryStore
from tests.fakes import FakeProvider, Scripted

SYSTEM = {"role": "system", "content": "Be kind."}


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return JsonHistoryStore(tmp_path / "conversations")


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def service(store, provider) -> ChatService:
    return ChatService(store, provider, model="fake-model", system_prompt="Be kind.")


def answer(service: ChatService, conversation: Conversation, *, regenerate: bool = False) -> Conversation:
    reply = service.request_reply(conversation, regenerate=regenerate)
    list(reply)  # stream it to the end, as the page does
    return service.save_reply(conversation, reply, regenerate=regenerate)


def talk(service: ChatService, conversation: Conversation, *questions: str) -> Conversation:
    """Ask each question and save the FakeProvider's echo ("Echo: question") unless replies are queued."""
    for question in questions:
        conversation = answer(service, service.add_user_message(conversation, question))
    return conversation


def on_disk(store: JsonHistoryStore, conversation_id: str) -> dict:
    return json.loads(store.path_for(conversation_id).read_text(encoding="utf-8"))


def contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages]


# Replies


def test_a_reply_is_saved_with_how_it_ended_after_the_prompt_the_model_was_sent(store, provider, service):
    provider.enqueue("Hello there")
    conversation = talk(service, service.new_conversation(), "Hi")
    [request] = provider.requests
    assert request.messages == [SYSTEM, {"role": "user", "content": "Hi"}]
    assert request.temperature is None and request.model == "fake-model"

    data = on_disk(store, conversation.id)
    assert data["model"] == "fake-model"
    reply = data["messages"][1]
    assert reply["role"] == "assistant" and reply["content"] == "Hello there"
    assert reply["finish_reason"] == "stop" and "status" not in reply
    assert reply["usage"] == {"total_tokens": 2} and isinstance(reply["latency_ms"], int)
    assert reply_details(reply).startswith("2 tokens · ")
    assert status_note(reply) is None
    assert store.get(conversation.id) == conversation


def test_a_reply_cut_short_is_kept_but_one_with_no_text_saves_nothing(store, provider, service):
    provider.enqueue(Scripted(("Half a", " thought"), error=ChatError("dropped")))
    conversation = talk(service, service.new_conversation(), "Hi")
    reply = on_disk(store, conversation.id)["messages"][-1]
    assert reply["content"] == "Half a thought"
    assert reply["status"] == reply["finish_reason"] == "interrupted"
    assert "interrupted" in status_note(reply)

    before = store.path_for(conversation.id).read_bytes()
    for regenerate in (False, True):  # a failed regeneration leaves the earlier reply in place
        provider.enqueue(ChatError("server", status=500))
        assert answer(service, conversation, regenerate=regenerate) is conversation
    assert store.path_for(conversation.id).read_bytes() == before


def test_a_reply_that_fails_unexpectedly_is_saved_as_interrupted_never_as_stopped(store, provider, service):
    provider.enqueue(Scripted(("Half a", " thought"), error=KeyError("choices")))
    conversation = service.add_user_message(service.new_conversation(), "Hi")
    reply = service.request_reply(conversation)
    list(reply)
    reply.stop()  # as the page does after every reply
    assert reply.error.kind == "unexpected" and "KeyError" in reply.error.message
    saved = on_disk(store, service.save_reply(conversation, reply).id)["messages"][-1]
    assert saved["content"] == "Half a thought"
    assert saved["status"] == saved["finish_reason"] == "interrupted"


def test_regenerating_replaces_the_last_reply_and_keeps_every_earlier_version(store, provider, service):
    provider.enqueue("First answer", "Second answer", "Third answer")
    conversation = talk(service, service.new_conversation(), "Question?")
    conversation = answer(service, conversation, regenerate=True)
    conversation = answer(service, conversation, regenerate=True)

    first, *regenerations = provider.requests
    assert all(r.messages == first.messages == [SYSTEM, {"role": "user", "content": "Question?"}]
               for r in regenerations)
    [_, reply] = on_disk(store, conversation.id)["messages"]
    assert reply["content"] == "Third answer"
    assert contents(reply["alternatives"]) == ["First answer", "Second answer"]
    assert all(v["role"] == "assistant" and "alternatives" not in v for v in reply["alternatives"])
    assert store.get(conversation.id) == conversation
    assert pending_action(conversation, "regenerate") == "regenerate"


# Editing the last question


def test_editing_the_last_question_drops_its_replies_and_keeps_them_with_the_old_version(
    store, provider, service
):
    conversation = talk(service, service.new_conversation(), "One", "Two")
    old_question, old_reply = conversation.messages[2:]
    conversation = service.edit_last_user_message(conversation, "Two, better")

    messages = on_disk(store, conversation.id)["messages"]
    assert contents(messages) == ["One", "Echo: One", "Two, better"] and messages[2]["role"] == "user"
    [version] = messages[2]["alternatives"]
    assert version == {**old_question, "replies": [old_reply]}
    assert "replies" not in messages[2]
    assert pending_action(conversation, "reply") == "reply"

    conversation = answer(service, conversation)
    assert provider.requests[-1].messages[-1] == {"role": "user", "content": "Two, better"}
    conversation = service.edit_last_user_message(conversation, "Two, best")
    versions = on_disk(store, conversation.id)["messages"][2]["alternatives"]
    assert [(v["content"], contents(v["replies"])) for v in versions] == [
        ("Two", ["Echo: Two"]), ("Two, better", ["Echo: Two, better"]),
    ]
    assert all("alternatives" not in v for v in versions)
    assert len(store.get(conversation.id).messages) == 3


def test_an_edit_that_is_too_long_or_has_nothing_to_edit_changes_nothing(store, provider):
    service = ChatService(store, provider, model="fake-model", max_message_chars=10)
    conversation = talk(service, service.new_conversation(), "Short")
    before = store.path_for(conversation.id).read_bytes()
    with pytest.raises(ChatError) as error:
        service.edit_last_user_message(conversation, "x" * 11)
    assert error.value.kind == "too_long" and "11" in error.value.message
    assert store.path_for(conversation.id).read_bytes() == before
    with pytest.raises(ValueError):
        service.edit_last_user_message(service.new_conversation(), "hi")


def test_a_stale_page_cannot_regenerate_or_edit_over_another_tabs_message(store, service):
    stale = talk(service, service.new_conversation(), "Question?")
    store.append(stale.id, make_message("user", "From another tab"))
    before = store.path_for(stale.id).read_bytes()

    reply = service.request_reply(stale, regenerate=True)
    assert list(reply)  # the model answered
    with pytest.raises(ConversationChanged):
        service.save_reply(stale, reply, regenerate=True)
    with pytest.raises(ConversationChanged):
        service.edit_last_user_message(stale, "Edited")
    assert store.path_for(stale.id).read_bytes() == before
    assert contents(store.get(stale.id).messages) == ["Question?", "Echo: Question?", "From another tab"]


# Feedback


def test_feedback_is_saved_in_the_message_and_cleared_without_touching_updated_at(store, service):
    conversation = talk(service, service.new_conversation(), "Hi")
    updated_at = on_disk(store, conversation.id)["updated_at"]
    for rating in ("up", "down"):
        conversation = service.set_feedback(conversation, 1, rating)
        assert on_disk(store, conversation.id)["messages"][1]["feedback"] == rating
    assert conversation.messages[1]["feedback"] == "down"
    conversation = service.set_feedback(conversation, 1, None)
    data = on_disk(store, conversation.id)
    assert "feedback" not in data["messages"][1] and data["updated_at"] == updated_at
    with pytest.raises(ValueError):
        service.set_feedback(conversation, 1, "meh")


def test_feedback_on_a_reply_replaced_in_another_tab_is_refused(store, service):
    stale = talk(service, service.new_conversation(), "Hi")
    elsewhere = {**make_message("assistant", "Another tab's reply"), "created_at": "2030-01-01T00:00:00.000Z"}
    store.replace_tail(stale.id, 1, elsewhere, expected_count=2)
    with pytest.raises(ConversationChanged):
        service.set_feedback(stale, 1, "up")
    assert store.get(stale.id).messages[1] == elsewhere


# Settings


def test_a_new_conversations_settings_are_kept_in_memory_and_saved_with_its_first_message(
    store, provider, service
):
    conversation = service.new_conversation()
    options = ConversationSettings(temperature=0.3, system_prompt="Talk like a pirate.")
    conversation = service.configure(conversation, " other-model ", options)
    assert not store.exists(conversation.id) and conversation.model == "other-model"

    conversation = talk(service, conversation, "Hi")
    [request] = provider.requests
    assert request.temperature == 0.3 and request.model == "other-model"
    assert request.messages[0] == {"role": "system", "content": "Talk like a pirate."}
    data = on_disk(store, conversation.id)
    assert data["settings"] == {"temperature": 0.3, "system_prompt": "Talk like a pirate."}
    assert data["model"] == "other-model" and data["messages"][1]["model"] == "other-model"


def test_a_saved_conversations_settings_are_updated_on_disk(store, provider, service):
    conversation = talk(service, service.new_conversation(), "Hi")
    conversation = service.configure(conversation, "m2", ConversationSettings(temperature=1.5))
    data = on_disk(store, conversation.id)
    assert data["model"] == "m2" and data["settings"] == {"temperature": 1.5}
    answer(service, conversation, regenerate=True)
    assert provider.requests[-1].temperature == 1.5 and provider.requests[-1].model == "m2"
    assert provider.requests[-1].messages[0] == SYSTEM

    conversation = service.configure(conversation, "  ", ConversationSettings())
    data = on_disk(store, conversation.id)
    assert data["model"] == "fake-model" and data["settings"] == {}
    assert settings_of(conversation) == ConversationSettings()


def test_the_system_prompt_comes_from_settings_then_the_conversation_then_the_app(store, provider, service):
    rules = make_message("system", "Imported rules.")
    store.create(Conversation(id="imported", messages=[rules, make_message("user", "Hi")]))

    def system_sent(conversation: Conversation) -> list[str]:
        service.request_reply(conversation)
        return [m["content"] for m in provider.requests[-1].messages if m["role"] == "system"]

    assert system_sent(store.get("imported")) == ["Imported rules."]
    configured = service.configure(store.get("imported"), "", ConversationSettings(system_prompt="Own."))
    assert system_sent(configured) == ["Own."]
    assert system_sent(Conversation(messages=[make_message("user", "Hi")])) == ["Be kind."]
    service.system_prompt = None
    assert system_sent(Conversation(messages=[make_message("user", "Hi")])) == []


def test_settings_refuse_values_a_model_server_would_not_accept():
    for temperature in (0, 1, 0.7, 2.0, None):
        assert ConversationSettings(temperature=temperature).temperature == temperature
    for temperature in (-0.1, 2.01, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError):
            ConversationSettings(temperature=temperature)
    assert ConversationSettings(system_prompt="x" * 20_000).system_prompt
    with pytest.raises(ValueError, match="20,000"):
        ConversationSettings(system_prompt="x" * 20_001)
    assert ConversationSettings.from_form(None, "  \n ") == ConversationSettings()
    expected = {"temperature": 0.5, "system_prompt": "Be brief."}
    assert ConversationSettings.from_form(0.5, " Be brief. ").to_dict() == expected


def test_settings_of_ignores_invalid_saved_values():
    for bad_temperature, bad_prompt in [(5, ["not", "text"]), (float("nan"), {"a": 1}), (True, 42),
                                        ("0.5", "x" * 20_001)]:
        saved = {"temperature": bad_temperature, "system_prompt": bad_prompt}
        assert settings_of(Conversation(extra={"settings": saved})) == ConversationSettings()
        mixed = Conversation(extra={"settings": {**saved, "temperature": 0.2}})
        assert settings_of(mixed) == ConversationSettings(temperature=0.2)
    assert settings_of(Conversation(extra={"settings": "hot"})) == ConversationSettings()


# Title and context


def test_rename_saves_a_clean_title_that_the_next_message_keeps(store, service):
    conversation = talk(service, service.new_conversation(), "Hi")
    service.rename(conversation.id, "  Trip \n to\tRome  ")
    assert on_disk(store, conversation.id)["title"] == "Trip to Rome"
    talk(service, store.get(conversation.id), "Another question")
    assert store.get(conversation.id).title == "Trip to Rome"

    long_title = service.rename(conversation.id, "word " * 100).title
    assert len(long_title) <= 200 and long_title == long_title.strip()
    with pytest.raises(ValueError):
        service.rename(conversation.id, " \n\t ")
    assert store.get(conversation.id).title == long_title
    with pytest.raises(ConversationNotFound):
        service.rename("missing", "title")


def test_context_estimate_counts_old_messages_left_out_and_keeps_the_system_prompt(store):
    provider = FakeProvider(context_tokens=80)
    service = ChatService(store, provider, model="fake-model", system_prompt="Be kind.")
    conversation = talk(service, service.new_conversation(), *(f"question {n} " + "x" * 60 for n in range(4)))
    estimate = service.context_estimate(conversation)
    service.request_reply(conversation)
    sent = provider.requests[-1].messages
    assert sent[0] == SYSTEM and estimate.window == 80
    assert estimate.left_out == len(conversation.messages) - (len(sent) - 1) > 0
    assert estimate.tokens == sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in sent) <= 80
    assert estimate.describe() == (
        f"About {estimate.tokens} tokens go with the next message, of a 80-token context. "
        f"The {estimate.left_out} oldest messages no longer fit and are left out."
    )

    huge = service.configure(conversation, "", ConversationSettings(system_prompt="rules " * 100))
    estimate = service.context_estimate(huge)
    service.request_reply(huge)
    sent = provider.requests[-1].messages
    assert sent[0] == {"role": "system", "content": "rules " * 100} and len(sent) == 2
    assert estimate.left_out == len(huge.messages) - 1 and estimate.tokens > 80

    unlimited = ChatService(store, FakeProvider(), model="fake-model").context_estimate(huge)
    assert unlimited.window is None and unlimited.left_out == 0
    assert unlimited.describe() == f"About {unlimited.tokens:,} tokens go with the next message."


# Helpers the page uses


def test_the_pages_helpers_read_the_saved_messages():
    roles = ["system", "user", "assistant", "user", "assistant"]
    conversation = Conversation(messages=[make_message(role, f"m{i}") for i, role in enumerate(roles)])
    assert last_user_index(conversation) == 3
    assert pending_action(conversation, "regenerate") == "regenerate"
    assert pending_action(conversation, "reply") is None  # a double click after the reply came
    assert pending_action(conversation, None) is None
    assert pending_action(Conversation(), "reply") is None and last_user_index(Conversation()) is None

    hidden, shown = visible_messages(conversation.messages, 3)
    assert hidden == 1 and [(i, m["content"]) for i, m in shown] == [(2, "m2"), (3, "m3"), (4, "m4")]
    assert visible_messages(conversation.messages, 10)[0] == 0

    usage = {"prompt_tokens": 1234, "completion_tokens": 56}
    details = reply_details({"role": "assistant", "usage": usage, "latency_ms": 1500})
    assert details == "1,234 tokens in · 56 out · 1.5 s"
    assert reply_details({"role": "assistant", "usage": {"total_tokens": 7}}) == "7 tokens"
    assert reply_details({"role": "assistant", "latency_ms": True, "usage": "lots"}) is None
    assert reply_details({"role": "user", "latency_ms": 100}) is None


def test_two_stale_tabs_regenerating_at_once_lose_neither_reply(service, store, provider):
    provider.enqueue("First")
    conversation = talk(service, service.new_conversation(), "Question?")
    tab_a, tab_b = store.get(conversation.id), store.get(conversation.id)
    provider.enqueue("From tab A", "From tab B")
    answer(service, tab_a, regenerate=True)
    with pytest.raises(ConversationChanged):
        answer(service, tab_b, regenerate=True)
    reply = store.get(conversation.id).messages[-1]
    assert reply["content"] == "From tab A" and contents(reply["alternatives"]) == ["First"]
