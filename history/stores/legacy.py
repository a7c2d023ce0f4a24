"""The earlier Flask MVP's history file: a JSON list of {"role", "content"} messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from history.models import Conversation, InvalidConversation, check_message, stamp_of, title_from

LEGACY_FILE_NAME = "conversation_history.json"
LEGACY_ID = "conversation_history"
COPY_ID = "flask-conversation-history"


def parse_flask_history(data: object) -> list[dict]:
    """Check the Flask list format and return fresh message dicts, or say what is wrong."""
    if not isinstance(data, list):
        raise InvalidConversation(
            "expected the Flask app's format: a JSON list of messages, each with 'role' and 'content'"
        )
    messages = []
    for index, item in enumerate(data):
        check_message(item, index, needs_time=False)
        messages.append(dict(item))
    return messages


def legacy_conversation(messages: list[dict], mtime: float) -> Conversation:
    """The Flask file shown as a conversation; it has no times of its own, so use its mtime."""
    stamp = stamp_of(datetime.fromtimestamp(mtime, UTC))
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    return Conversation(
        id=LEGACY_ID,
        title=title_from(first_user),
        created_at=stamp,
        updated_at=stamp,
        model="",
        messages=[{**m, "created_at": stamp} if "created_at" not in m else m for m in messages],
    )


def continuation_of(legacy: Conversation) -> Conversation:
    """A writable copy of the Flask conversation, so the original file is never modified."""
    copied = [dict(m) for m in legacy.messages]
    return replace(legacy, id=COPY_ID, messages=copied, extra={"imported_from": LEGACY_FILE_NAME})
