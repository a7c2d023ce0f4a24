"""What each store change does to a conversation, shared by every HistoryStore implementation.

A store reads the saved conversation under its lock, applies one of these, then saves the result,
so the JSON folder and the database agree on every rule (validation, titles, ConversationChanged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from history.errors import ConversationChanged
from history.models import Conversation, check_message, utc_now

Change = Callable[[Conversation], None]

FIXED_FIELDS = frozenset({"id", "schema_version", "created_at", "messages"})
TEXT_FIELDS = ("title", "model", "updated_at")
MESSAGE_CORE = frozenset({"role", "content", "created_at"})


def prepared(messages: Iterable[dict]) -> list[dict]:
    """Validated copies of new messages, stamped with a time if the caller gave none."""
    batch = []
    for index, message in enumerate(messages):
        check_message(message, index, needs_time=False)  # the time is stamped here when missing
        copy = dict(message)
        copy.setdefault("created_at", utc_now())
        batch.append(copy)
    return batch


def appending(batch: list[dict], model: str | None) -> Change:
    """Add prepared messages at the end and, if given, switch the conversation's model."""
    if model is not None and not isinstance(model, str):
        raise TypeError("'model' must be a string")

    def change(conversation: Conversation) -> None:
        for message in batch:
            conversation.add(message)
        if model is not None:
            conversation.model = model

    return change


def updating(fields: dict) -> Change:
    """Set top-level fields; anything unknown (settings) is kept in `extra`.

    Refuses changes that would break the conversation before the store takes any lock.
    """
    fixed = sorted(FIXED_FIELDS & fields.keys())
    if fixed:
        raise ValueError(f"{', '.join(fixed)} cannot be changed with update()")
    for key in TEXT_FIELDS:
        if key in fields and not isinstance(fields[key], str):
            raise TypeError(f"'{key}' must be a string")

    def change(conversation: Conversation) -> None:
        for key, value in fields.items():
            if key in TEXT_FIELDS:
                setattr(conversation, key, value)
            elif key == "titled_by_user":
                conversation.titled_by_user = bool(value)
            else:
                conversation.extra[key] = value
        if "title" in fields and "titled_by_user" not in fields:
            conversation.titled_by_user = True  # a chosen title must survive the first message

    return change


def replacing_tail(
    conversation_id: str, start: int, batch: list[dict], expected_count: int, expected_last: str | None
) -> Change:
    """Swap messages[start:] for the batch, unless the saved tail is not the one the caller saw."""

    def change(conversation: Conversation) -> None:
        saved = conversation.messages
        last = saved[-1].get("created_at") if saved else None
        if (
            len(saved) != expected_count
            or not 0 <= start <= expected_count
            or (expected_last is not None and last != expected_last)
        ):
            raise ConversationChanged(conversation_id)
        del conversation.messages[start:]
        for message in batch:
            conversation.add(message)

    return change


def updating_message(conversation_id: str, index: int, created_at: str, fields: dict) -> Change:
    """Set or (with None) remove extra fields of the message at `index`, if it is still the same one."""
    core = sorted(MESSAGE_CORE & fields.keys())
    if core:
        raise ValueError(f"{', '.join(core)} cannot be changed with update_message()")

    def change(conversation: Conversation) -> None:
        messages = conversation.messages
        if not 0 <= index < len(messages) or messages[index].get("created_at") != created_at:
            raise ConversationChanged(conversation_id)
        for key, value in fields.items():
            if value is None:
                messages[index].pop(key, None)
            else:
                messages[index][key] = value

    return change

