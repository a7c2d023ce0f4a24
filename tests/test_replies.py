"""Replies generated apart from the page: kept, checkpointed and saved once, whoever watches them."""

from __future__ import annotations

import threading
import time

import pytest

from chatbot.chat import ChatService
from chatbot.message_notes import STATUS_STREAMING, status_note
from chatbot.providers.openai_provider import OpenAIProvider
from chatbot.replies import ReplyWorkers
from history.models import Conversation, make_message
from history.stores.json_store import JsonHistoryStore
from tests.openai_server import Script

STORY = " ".join(f"w{number:02d}" for number in range(40))


@pytest.fixture
def store(tmp_path) -> JsonHistoryStore:
    return JsonHistoryStore(tmp_path / "history")


@pytest.fixture
def service(store, openai_server) -> ChatService:
    provider = OpenAIProvider("test-key", openai_server.base_url, timeout=5, max_retries=0)
    return ChatService(store, provider, model="test-model")


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def asked(service: ChatService, text: str) -> Conversation:
    return service.add_user_message(service.new_conversation(), text)


def test_a_reply_nobody_watches_still_arrives_whole_and_is_saved_once(service, store, openai_server):
    openai_server.enqueue(Script(STORY, chunk_delay=0.01))
    conversation = asked(service, "Tell me a story")
    job = ReplyWorkers().start(service, conversation)
    wait_for(lambda: not job.live)
    saved = store.get(conversation.id).messages
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[-1]["content"] == STORY and saved[-1]["finish_reason"] == "stop"
    assert "status" not in saved[-1] and "checkpoint_at" not in saved[-1]


def test_the_partial_reply_is_saved_as_it_grows_so_another_tab_sees_it(service, store, openai_server):
    openai_server.enqueue(Script(STORY, chunk_delay=0.1))  # ~4 s
    conversation = asked(service, "Tell me a story")
    job = ReplyWorkers().start(service, conversation)
    seen = []
    for _ in range(3):
        wait_for(lambda: len(store.get(conversation.id).messages) == 2
                 and store.get(conversation.id).messages[-1]["content"] not in seen)
        partial = store.get(conversation.id).messages[-1]
        assert partial["status"] == STATUS_STREAMING and STORY.startswith(partial["content"])
        assert status_note(partial) and "another window" in status_note(partial)
        seen.append(partial["content"])
    assert len(seen[0]) < len(seen[1]) < len(seen[2])  # it grew, checkpoint by checkpoint
    wait_for(lambda: not job.live)
    assert store.get(conversation.id).messages[-1]["content"] == STORY


def test_many_followers_each_see_the_whole_reply(service, openai_server):
    openai_server.enqueue(Script(STORY, chunk_delay=0.02))
    job = ReplyWorkers().start(service, asked(service, "Tell me a story"))
    texts: list[str] = []
    late = threading.Event()

    def watch(delay: float) -> None:
        time.sleep(delay)
        late.set()
        texts.append("".join(job.follow()))

    threads = [threading.Thread(target=watch, args=(delay,)) for delay in (0, 0.3, 0.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert texts == [STORY] * 3  # a follower that came late got the text so far, then the rest


def test_stop_keeps_what_arrived_marks_it_stopped_and_stops_reading(service, store, openai_server):
    openai_server.enqueue(Script(STORY, chunk_delay=0.1))
    conversation = asked(service, "Tell me a story")
    job = ReplyWorkers().start(service, conversation)
    wait_for(lambda: "w05" in job.text)
    job.stop()
    reply = store.get(conversation.id).messages[-1]
    assert reply["status"] == "stopped" and STORY.startswith(reply["content"])
    assert "w39" not in reply["content"]
    wait_for(lambda: openai_server.hung_up)
    assert openai_server.hung_up[0][0] < openai_server.hung_up[0][1]
    assert len(store.get(conversation.id).messages) == 2


def test_asking_again_while_a_reply_is_in_flight_joins_it(service, openai_server):
    openai_server.enqueue(Script(STORY, chunk_delay=0.02))
    workers = ReplyWorkers()
    conversation = asked(service, "Tell me a story")
    first = workers.start(service, conversation)
    assert workers.start(service, conversation) is first
    assert workers.find(service.store, conversation.id) is first
    wait_for(lambda: not first.live)
    assert len(openai_server.chat_requests) == 1


def test_a_regenerated_reply_replaces_the_old_one_and_keeps_it(service, store, openai_server):
    openai_server.enqueue("First answer.", Script(STORY, chunk_delay=0.02))
    workers = ReplyWorkers()
    conversation = asked(service, "Tell me a story")
    job = workers.start(service, conversation)
    wait_for(lambda: not job.live)
    job = workers.start(service, store.get(conversation.id), regenerate=True)
    wait_for(lambda: not job.live)
    [_, reply] = store.get(conversation.id).messages
    assert reply["content"] == STORY
    assert [version["content"] for version in reply["alternatives"]] == ["First answer."]


def test_a_reply_left_streaming_by_a_server_that_stopped_shows_as_interrupted(service, store):
    conversation = asked(service, "Tell me a story")
    partial = make_message("assistant", "Once upon", status=STATUS_STREAMING,
                           checkpoint_at="2026-01-01T00:00:00.000Z")
    store.append(conversation.id, partial)
    opened = service.settle(store.get(conversation.id), in_flight=False)
    reply = store.get(conversation.id).messages[-1]
    assert opened.messages[-1] == reply
    assert reply["content"] == "Once upon" and reply["status"] == "interrupted"
    assert "checkpoint_at" not in reply
    assert "server stopped" in status_note(reply)


def test_a_reply_whose_conversation_was_deleted_meanwhile_is_kept_and_saved_after_restore(
    service, store, openai_server
):
    openai_server.enqueue(Script(STORY, chunk_delay=0.05))
    conversation = asked(service, "Tell me a story")
    job = ReplyWorkers().start(service, conversation)
    wait_for(lambda: len(store.get(conversation.id).messages) == 2)
    store.delete(conversation.id)
    wait_for(lambda: not job.live)
    assert job.unsaved and job.text == STORY
    assert "deleted" in job.save_error.message
    assert not job.save_again()
    store.restore(conversation.id)
    assert job.save_again()
    assert store.get(conversation.id).messages[-1]["content"] == STORY
