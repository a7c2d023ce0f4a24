"""Conversations to database rows and back, losing nothing.

The Conversation.to_dict() shape stays the source of truth: a row keeps each key's value and the
order of a message's keys, so a conversation read back encodes to the same bytes the JSON store
writes. Common columns hold the usual values; `layout` records only what departs from the usual:
a message's key order when it is not role, content, created_at, then the rest, and any text that
holds NUL, which PostgreSQL text columns cannot store (the column gets U+FFFD in its place).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from history.models import (
    SCHEMA_VERSION,
    Conversation,
    ConversationSummary,
    InvalidConversation,
    is_valid_id,
    order_of,
)
from history.stores.sql_schema import conversations, messages

_CONVERSATION_TEXT = ("title", "created_at", "updated_at", "model")
_CORE = ("role", "content")
_COLUMN_KEYS = frozenset({"schema_version", "id", *_CONVERSATION_TEXT, "titled_by_user", "messages"})
_JSON_SPACE = " \t\n\r"
# is_valid_id() in SQL (SQLAlchemy gives SQLite a REGEXP that runs Python's re.search); the length is
# checked apart, as PostgreSQL takes ten times longer over a bounded repeat
_VALID_ID, _MAX_ID_LENGTH = r"\A[A-Za-z0-9][A-Za-z0-9_-]*\Z", 100
_RESERVED_IDS = ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(10)]


def _fit(value: str, name: str, layout: dict) -> str:
    """The text a column can hold; the exact text goes to layout when it differs."""
    if "\x00" not in value:
        return value
    layout[name] = value
    return value.replace("\x00", "\ufffd")


def message_values(message: dict) -> dict:
    """Column values of one message (already validated: role and text content)."""
    layout: dict = {}
    created = message.get("created_at")
    created_column = _fit(created, "created_at", layout) if isinstance(created, str) else None
    extra = {key: value for key, value in message.items() if key not in _CORE}
    if created_column is not None:
        del extra["created_at"]
    usual = [*_CORE, *(["created_at"] if created_column is not None else []), *extra]
    if list(message) != usual:
        layout["order"] = list(message)
    return {
        "role": message["role"],
        "content": _fit(message["content"], "content", layout),
        "created_at": created_column,
        "extra": extra,
        "layout": layout or None,
    }


def message_from(row: Mapping) -> dict:
    """The message dict a row holds, keys in their saved order; InvalidConversation if malformed."""
    layout, extra = row["layout"] or {}, row["extra"]
    if not isinstance(layout, dict) or not isinstance(extra, dict):
        raise InvalidConversation(f"message {row['position'] + 1} has malformed extra keys")
    message = {"role": row["role"], "content": layout.get("content", row["content"])}
    if row["created_at"] is not None:
        message["created_at"] = layout.get("created_at", row["created_at"])
    message.update(extra)
    order = layout.get("order")
    if order is not None:
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(message):
            raise InvalidConversation(f"message {row['position'] + 1} has a malformed key order")
        message = {key: message[key] for key in order}
    return message


def conversation_values(conversation: Conversation) -> dict:
    """Column values of a conversation's row (its messages go to their own rows)."""
    layout: dict = {}
    values = {name: _fit(getattr(conversation, name), name, layout) for name in _CONVERSATION_TEXT}
    return {
        **values,
        "updated_order": order_of(conversation.updated_at),
        "message_count": len(conversation.messages),
        "titled_by_user": conversation.titled_by_user,
        "extra": conversation.extra,
        "layout": layout or None,
    }


def _text(row: Mapping, name: str) -> str:
    return (row["layout"] or {}).get(name, row[name])


def row_problem(row: Mapping) -> str | None:
    """Why a conversation row cannot be read as one, from its own columns; None when it can."""
    if not is_valid_id(row["id"]):
        return "its id is not a valid conversation id (use only A-Z a-z 0-9 - _)"
    if not isinstance(row["extra"], dict):
        return "its 'extra' column is not a JSON object"
    if row["extra"].keys() & _COLUMN_KEYS:
        return f"its 'extra' column repeats {', '.join(sorted(row['extra'].keys() & _COLUMN_KEYS))}"
    if not isinstance(row["layout"], dict | None):
        return "its 'layout' column is not a JSON object"
    return None


def conversation_from(row: Mapping, message_rows: list[Mapping]) -> Conversation:
    """The conversation a row and its message rows hold, validated like a file."""
    problem = row_problem(row)
    if problem:
        raise InvalidConversation(problem)
    data = {
        "schema_version": SCHEMA_VERSION,
        "id": row["id"],
        **{name: _text(row, name) for name in _CONVERSATION_TEXT},
        **row["extra"],
    }
    if row["titled_by_user"]:
        data["titled_by_user"] = True
    data["messages"] = [message_from(message) for message in message_rows]
    return Conversation.from_dict(data)


def readable_conversations(connection: Connection, rows: list[Mapping]) -> dict[int, Conversation]:
    """The conversations these rows hold, by serial, their messages read in one query; unreadable ones
    are left out (get() reports them when the user opens one)."""
    grouped: dict[int, list] = {row["serial"]: [] for row in rows}
    query = sa.select(messages).where(messages.c.conversation_serial.in_(list(grouped)))
    query = query.order_by(messages.c.conversation_serial, messages.c.position)
    for message in connection.execute(query).mappings():
        grouped[message["conversation_serial"]].append(message)
    found = {}
    for row in rows:
        try:
            found[row["serial"]] = conversation_from(row, grouped[row["serial"]])
        except InvalidConversation:
            continue
    return found


def listing_entry(row: tuple) -> ConversationSummary | str:
    """The listing row from a summary query, or why it cannot be read.

    The row is (id, title, created_at, updated_at, message_count, model, extra, layout) with extra
    and layout as JSON text: only the rare layout is decoded, which keeps a listing of 10,000 rows
    quick; get() checks everything else.
    """
    conversation_id, title, created_at, updated_at, message_count, model, extra_text, layout_text = row
    if not is_valid_id(conversation_id):
        return "its id is not a valid conversation id (use only A-Z a-z 0-9 - _)"
    if not (extra_text or "").lstrip(_JSON_SPACE).startswith("{"):
        return "its 'extra' column is not a JSON object"
    if layout_text is not None:
        try:
            layout = json.loads(layout_text)
        except ValueError:
            layout = None
        if not isinstance(layout, dict):
            return "its 'layout' column is not a JSON object"
        title, created_at = layout.get("title", title), layout.get("created_at", created_at)
        updated_at, model = layout.get("updated_at", updated_at), layout.get("model", model)
    return ConversationSummary(conversation_id, title, created_at, updated_at, message_count, model)


def listable(dialect: str) -> sa.ColumnElement[bool]:
    """Where listing_entry() reads a conversation row, in SQL, so the database cuts pages and counts."""
    c = conversations.c
    if dialect == "sqlite":  # SQLite may hold text that is not JSON at all
        layout_type = sa.case((sa.func.json_valid(c.layout) == 1, sa.func.json_type(c.layout)))
    else:
        layout_type = sa.func.json_typeof(c.layout)
    return sa.and_(
        sa.func.length(c.id) <= _MAX_ID_LENGTH,
        c.id.regexp_match(_VALID_ID),
        sa.func.upper(c.id).not_in(_RESERVED_IDS),
        sa.func.substr(sa.func.ltrim(sa.cast(c.extra, sa.Text), _JSON_SPACE), 1, 1) == "{",
        sa.or_(c.layout.is_(None), layout_type == "object"),
    )


def save_rows(connection: Connection, table: sa.Table, serial: int, before: Sequence, after: Sequence,
              values: Callable[[int], dict], **fixed: object) -> None:
    """Bring a conversation's rows in `table` (keyed by serial and position) from `before` to `after`,
    writing only what changed: updated rows, a cut tail, new rows at the end (which also get `fixed`)."""
    mine, position_of = table.c.conversation_serial == serial, table.c.position
    for position in range(min(len(before), len(after))):
        if after[position] != before[position]:
            changed = sa.update(table).where(mine, position_of == position)
            connection.execute(changed.values(**values(position)))
    if len(before) > len(after):
        connection.execute(sa.delete(table).where(mine, position_of >= len(after)))
    new = [
        {"conversation_serial": serial, "position": position, **fixed, **values(position)}
        for position in range(len(before), len(after))
    ]
    if new:
        connection.execute(sa.insert(table), new)


def save_messages(connection: Connection, serial: int, before: list[list], after: list[dict]) -> None:
    """The message rows from `before` (each message's items, so a new key order counts) to `after`."""
    items = [list(message.items()) for message in after]
    save_rows(connection, messages, serial, before, items, lambda position: message_values(after[position]))
