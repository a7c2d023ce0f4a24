"""Chat controls and conversation management as a user drives them (AppTest, real test server)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from tests.apptest import WELCOME, button, chat, saved, send

DATA = Path(__file__).parent / "data"


def popover_widget(at, kind: str, key_prefix: str):
    """The widget of a kind whose key starts with a prefix (popover fields are keyed per conversation)."""
    return next(w for w in getattr(at, kind) if str(w.key).startswith(key_prefix))


def messages_on_disk(history_dir: Path) -> list[dict]:
    [conversation] = saved(history_dir)
    return conversation["messages"]


def test_regenerate_replaces_the_reply_and_keeps_the_old_one_as_an_earlier_version(
    new_visit, openai_server, history_dir
):
    openai_server.enqueue("First answer.", "Second answer.")
    at = send(new_visit(), "Tell me something")
    button(at, "Regenerate").click().run()
    assert chat(at) == [("user", "Tell me something"), ("assistant", "Second answer.")]
    assert at.chat_message[-1].expander[0].label == "Earlier versions (1)"
    assert "First answer." in [m.value for m in at.chat_message[-1].expander[0].markdown]
    reply = messages_on_disk(history_dir)[-1]
    assert reply["content"] == "Second answer."
    assert [v["content"] for v in reply["alternatives"]] == ["First answer."]
    sent = openai_server.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user"], "the old reply is not sent again"


def test_edit_and_resend_replaces_the_last_question_and_keeps_the_old_one(
    new_visit, openai_server, history_dir
):
    openai_server.enqueue("Answer about cats.", "Answer about dogs.")
    at = send(new_visit(), "Tell me about cats")
    popover_widget(at, "text_area", "edit_").set_value("Tell me about dogs")
    button(at, "Save and resend").click().run()
    assert chat(at) == [("user", "Tell me about dogs"), ("assistant", "Answer about dogs.")]
    question = messages_on_disk(history_dir)[0]
    [old] = question["alternatives"]
    assert old["content"] == "Tell me about cats"
    assert [r["content"] for r in old["replies"]] == ["Answer about cats."]
    assert len(messages_on_disk(history_dir)) == 2


def test_rename_changes_the_title_everywhere_and_survives_new_messages(new_visit, history_dir):
    at = send(new_visit(), "first question")
    popover_widget(at, "text_input", "title_").set_value("  Trip   planning ")
    button(at, "Save title").click().run()
    assert at.subheader[0].value == "Trip planning"
    send(at, "second question")
    assert saved(history_dir)[0]["title"] == "Trip planning"
    button(at, "Load History").click().run()
    assert at.dataframe[0].value["title"].tolist() == ["Trip planning"]


def test_an_empty_title_is_refused_with_a_message(new_visit, history_dir):
    at = send(new_visit(), "keep my title")
    popover_widget(at, "text_input", "title_").set_value("   ")
    button(at, "Save title").click().run()
    assert "cannot be empty" in at.error[0].value
    assert saved(history_dir)[0]["title"] == "keep my title"


def test_delete_asks_then_moves_to_trash_and_undo_brings_it_back(new_visit, history_dir):
    at = send(new_visit(), "delete me")
    assert any(m.startswith("Delete this conversation?") for m in at.markdown.values)
    button(at, "Delete conversation").click().run()
    assert chat(at) == WELCOME and saved(history_dir) == []
    assert (history_dir / ".trash").is_dir() and len(list((history_dir / ".trash").glob("*.json"))) == 1
    assert "Deleted “delete me”" in at.success[0].value
    button(at, "Undo").click().run()
    assert chat(at) == [("user", "delete me"), ("assistant", "Echo: delete me")]
    assert len(saved(history_dir)) == 1


def test_recently_deleted_in_load_history_restores_a_conversation(new_visit, history_dir):
    at = send(new_visit(), "gone for now")
    button(at, "Delete conversation").click().run()
    send(at, "still here")
    button(at, "Load History").click().run()
    assert at.dataframe[0].value["title"].tolist() == ["still here"]
    assert at.main.expander[-1].label == "Recently deleted (1)"
    button(at, "Restore").click().run()
    assert chat(at) == [("user", "gone for now"), ("assistant", "Echo: gone for now")]
    button(at, "Load History").click().run()
    assert sorted(at.dataframe[0].value["title"]) == ["gone for now", "still here"]


def trash_files(history_dir: Path) -> list[str]:
    return sorted(p.name for p in (history_dir / ".trash").glob("*.json"))


def test_delete_forever_in_recently_deleted_asks_then_removes_it_for_good(new_visit, history_dir):
    at = send(new_visit(), "never again")
    button(at, "Delete conversation").click().run()
    button(at, "Load History").click().run()
    assert at.main.expander[-1].label == "Recently deleted (1)"
    assert "removed for good 30 days after" in at.main.expander[-1].caption[0].value
    [popover] = [p for p in at.main.get("popover") if p.proto.popover.label == "Delete forever"]
    assert "cannot be undone" in popover.markdown[0].value  # the popover asks before anything goes
    assert len(trash_files(history_dir)) == 1

    popover.button[0].click().run()

    assert not at.exception and trash_files(history_dir) == []
    assert not [e for e in at.main.expander if e.label.startswith("Recently deleted")]
    assert at.success[0].value == "Deleted “never again” for good."


def test_conversations_deleted_longer_ago_than_chatbot_trash_days_are_removed(new_visit, history_dir):
    at = send(new_visit(CHATBOT_TRASH_DAYS=0.00001), "short-lived")  # under a second
    button(at, "Delete conversation").click().run()
    time.sleep(1.1)
    button(at, "Load History").click().run()
    assert not at.exception and trash_files(history_dir) == []
    assert not [e for e in at.main.expander if e.label.startswith("Recently deleted")]


def test_with_chatbot_trash_days_0_the_trash_is_kept_until_deleted_forever(new_visit, history_dir):
    at = send(new_visit(CHATBOT_TRASH_DAYS=0), "kept a while")
    button(at, "Delete conversation").click().run()
    time.sleep(0.05)
    button(at, "Load History").click().run()
    assert at.main.expander[-1].label == "Recently deleted (1)"
    assert "kept until you delete them forever" in at.main.expander[-1].caption[0].value
    assert trash_files(history_dir) != []


def test_search_in_load_history_lists_only_matching_conversations(new_visit):
    at = send(new_visit(), "How do I bake sourdough bread?")
    button(at, "Start Fresh").click().run()
    send(at, "What is the capital of Peru?")
    button(at, "Load History").click().run()
    search = next(t for t in at.text_input if t.label == "Search")
    search.set_value("sourdough").run()
    table = at.dataframe[0].value
    assert table["title"].tolist() == ["How do I bake sourdough bread?"]
    assert "sourdough" in table["snippet"].iloc[0]
    search.set_value("no such words anywhere").run()
    assert not at.dataframe and at.info[0].value == "Nothing matches. Change the search or the dates."


def test_export_buttons_offer_json_markdown_and_a_zip_of_everything(new_visit):
    at = send(new_visit(), "Export me please")
    labels = {b.label for b in at.get("download_button")}
    assert {"JSON", "Markdown"} <= labels
    button(at, "Load History").click().run()
    assert "Download all (zip)" in {b.label for b in at.get("download_button")}


def test_importing_a_chatgpt_export_reports_what_came_in_and_lists_it(new_visit, history_dir):
    at = new_visit()
    button(at, "Load History").click().run()
    data = (DATA / "chatgpt_conversations.json").read_bytes()
    at.file_uploader[0].upload("conversations.json", data, "application/json").run()
    assert at.success[0].value.startswith("Imported 2 conversations (8 messages) from ChatGPT export.")
    assert "Skipped 1: 'Untitled' has no messages to import." in at.success[0].value
    assert sorted(at.dataframe[0].value["title"]) == ["Describe this photo", "Weekend in Lisbon"]
    assert len(saved(history_dir)) == 2


def test_a_malformed_import_says_what_is_wrong_and_imports_nothing(new_visit, history_dir):
    at = new_visit()
    button(at, "Load History").click().run()
    at.file_uploader[0].upload("conversations.json", b'{"mapping": ', "application/json").run()
    assert "Nothing was imported" in at.error[0].value
    assert saved(history_dir) == []


def test_per_conversation_model_temperature_and_system_prompt_are_used_and_saved(
    new_visit, openai_server, history_dir, monkeypatch
):
    monkeypatch.setattr(openai_server, "models", ["test-model", "other-model"])
    st.cache_data.clear()
    at = new_visit()
    assert at.sidebar.selectbox[0].options == ["test-model", "other-model"]
    at.sidebar.selectbox[0].set_value("other-model")
    at.sidebar.number_input[0].set_value(0.7)
    at.sidebar.text_area[0].set_value("Answer like a pirate.")
    next(b for b in at.sidebar.button if b.label == "Save settings").click().run()
    send(at, "Hello")
    body = openai_server.chat_requests[-1].body
    assert body["model"] == "other-model" and body["temperature"] == 0.7
    assert body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    [conversation] = saved(history_dir)
    assert conversation["model"] == "other-model"
    assert conversation["settings"] == {"temperature": 0.7, "system_prompt": "Answer like a pirate."}


def test_the_model_is_typed_when_the_server_does_not_list_models(new_visit, openai_server, monkeypatch):
    monkeypatch.setattr(openai_server, "models", [])
    st.cache_data.clear()
    at = new_visit(CHATBOT_MODEL="typed-model")
    assert next(t for t in at.sidebar.text_input if t.label == "Model").value == "typed-model"


def test_the_token_estimate_and_each_replys_usage_are_shown(new_visit, openai_server):
    at = send(new_visit(), "one two three four")
    captions = [c.value for c in at.sidebar.caption]
    assert any(c.startswith("About ") and "tokens go with the next message" in c for c in captions)
    usage = at.chat_message[-1].caption[0].value
    assert "tokens in" in usage and "out" in usage


def test_thumbs_are_saved_in_the_message_and_shown_again_on_return(new_visit, history_dir):
    at = send(new_visit(), "rate me")
    at.feedback[0].set_value(1).run()
    assert messages_on_disk(history_dir)[-1]["feedback"] == "up"
    at.feedback[0].set_value(0).run()
    assert messages_on_disk(history_dir)[-1]["feedback"] == "down"
    again = new_visit()
    assert again.feedback[0].value == 0
    again.feedback[0].set_value(None).run()
    assert "feedback" not in messages_on_disk(history_dir)[-1]


def test_a_stopped_reply_is_shown_as_stopped(new_visit, history_dir):
    from history.models import Conversation, make_message
    from history.stores.json_store import JsonHistoryStore

    conversation = Conversation(model="test-model")
    conversation.add(make_message("user", "long story please"))
    conversation.add(make_message("assistant", "Once upon", status="stopped", finish_reason="stopped"))
    JsonHistoryStore(history_dir).create(conversation)
    at = new_visit()
    assert "Reply stopped." in at.chat_message[-1].caption[0].value
    assert button(at, "Regenerate"), "a stopped reply can be regenerated"
