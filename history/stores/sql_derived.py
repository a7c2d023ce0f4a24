"""Search and Insights answered by the database, from derived rows each change rewrites in its transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.engine import Connection

from history import insight_queries
from history.insights import COLUMNS, DERIVED, derived_values, message_rows
from history.models import Conversation, InvalidConversation, source_key
from history.search import Term, body, fts5_query, snippet, tsquery, words
from history.stores.sql_rows import conversation_from
from history.stores.sql_schema import (
    SEARCH,
    conversations,
    insight_rows,
    messages,
    search_texts,
    search_vectors,
)

_c, _m, _r = conversations.c, messages.c, insight_rows.c
_ROW_NAMES = COLUMNS[1:]  # insight_rows' own columns: conversation_id comes from the join
_ROW_COLUMNS = [_r[name] for name in _ROW_NAMES]
_SAVED = (*_ROW_NAMES, *DERIVED)  # what a derived row holds
_CHUNK = 500
# PostgreSQL's tsvector limits: a word of at most 2046 bytes, 256 positions a word, positions up to
# 16383 (later words all sit there), under 1 MB of words in all (the rest of a huge conversation is left out)
_LEXEME_BYTES = 2046
_POSITIONS_PER_WORD = 256
_LAST_POSITION = 16383
_VECTOR_BYTES = 900_000
_TS_WEIGHTS = sa.literal_column("'{0.5, 0.5, 0.5, 1.0}'::real[]")  # D (messages), C, B, A (title): 1 : 2
# rank / (1 + 0.2 ln(1 + distinct words)): like bm25, a shorter chat wins among equal mentions, yet more
# mentions still rank higher (ts_rank's own 1 + log(length) lets a passing mention outrank them)
_TS_LENGTH = 0.2
_BM25 = sa.func.bm25(sa.literal_column(SEARCH), 2.0, 1.0)  # the title weighs twice the messages


@dataclass(frozen=True)
class Derived:
    """What a conversation's derived rows hold: its insight rows (without the id) and its searchable text."""

    rows: list[tuple]
    title: str
    contents: list[str]


def derived(conversation: Conversation) -> Derived:
    """What the derived rows of this conversation, as it is now, should hold."""
    found = [_fit(row) for row in message_rows(conversation)]
    rows = [(*row[1:], *more) for row, more in zip(found, derived_values(found), strict=True)]
    return Derived(rows, conversation.title, [message["content"] for message in conversation.messages])


def save(connection: Connection, serial: int, before: Derived | None, after: Derived) -> None:
    """Bring a conversation's derived rows from `before` (None: it has none yet) to `after`."""
    if before is None or (before.title, before.contents) != (after.title, after.contents):
        _save_text(connection, serial, after, replace=before is not None)
    _save_rows(connection, serial, before.rows if before else [], after.rows)


def remove(connection: Connection, serials: list[int]) -> None:
    """Delete these conversations' derived rows (before the conversations themselves)."""
    connection.execute(sa.delete(insight_rows).where(_r.conversation_serial.in_(serials)))
    if connection.dialect.name == "sqlite":
        connection.execute(sa.delete(search_texts).where(search_texts.c.rowid.in_(serials)))
    else:
        connection.execute(sa.delete(search_vectors).where(search_vectors.c.conversation_serial.in_(serials)))


def fill(connection: Connection, *, texts: bool = True) -> None:
    """Derived rows for every readable conversation, live or in the trash (the upgrades to version 2, and
    to 3: insight rows only, without `texts`)."""
    serials = connection.scalars(sa.select(_c.serial).order_by(_c.serial)).all()
    for start in range(0, len(serials), _CHUNK):
        chunk = serials[start : start + _CHUNK]
        rows = connection.execute(sa.select(conversations).where(_c.serial.in_(chunk))).mappings().all()
        grouped: dict[int, list] = {serial: [] for serial in chunk}
        query = sa.select(messages).where(_m.conversation_serial.in_(chunk))
        query = query.order_by(_m.conversation_serial, _m.position)
        for message in connection.execute(query).mappings():
            grouped[message["conversation_serial"]].append(message)
        for row in rows:
            try:
                conversation = conversation_from(row, grouped[row["serial"]])
            except InvalidConversation:
                continue  # unreadable: listed by unreadable(), never searched or counted
            made = derived(conversation)
            if texts:
                save(connection, row["serial"], None, made)
            else:
                _save_rows(connection, row["serial"], [], made.rows)


def _save_text(connection: Connection, serial: int, text: Derived, *, replace: bool) -> None:
    if connection.dialect.name == "sqlite":  # FTS5 has no foreign key: a row deleted by hand leaves its text
        connection.execute(sa.delete(search_texts).where(search_texts.c.rowid == serial))
        values = {"rowid": serial, "title": text.title, "body": body(text.contents)}
        connection.execute(sa.insert(search_texts).values(**values))
        return
    if replace:
        connection.execute(sa.delete(search_vectors).where(search_vectors.c.conversation_serial == serial))
    document = sa.cast(document_text(text.title, text.contents), TSVECTOR)
    connection.execute(sa.insert(search_vectors).values(conversation_serial=serial, document=document))


def document_text(title: str, contents: list[str]) -> str:
    """A tsvector literal of the words history.search finds, so PostgreSQL splits no text its own way
    (e-mail addresses, paths, URLs...): the title's words weighted A, then the messages' after a gap,
    so a phrase never runs from the title into the messages, as FTS5's two columns keep them apart."""
    positions: dict[str, list[str]] = {}
    size = 0
    position = 1
    for text, weight in ((title, "A"), (body(contents), "")):
        found = words(text)
        head = max(0, _LAST_POSITION - position)  # the words after these all sit at the last position
        placed = [(word, f"{position + n}{weight}") for n, word in enumerate(found[:head], 1)]
        last = f"{_LAST_POSITION}{weight}"
        placed += [(word, last) for word in dict.fromkeys(found[head:])]
        for word, at in placed:
            seen = positions.get(word)
            if seen is None:
                length = len(word.encode("utf-8", "surrogatepass"))
                if length > _LEXEME_BYTES or size + length > _VECTOR_BYTES:
                    continue
                size += length
                positions[word] = [at]
            elif len(seen) < _POSITIONS_PER_WORD and seen[-1] != at:
                seen.append(at)
        position += len(found) + 1
    return " ".join(f"'{word}':{','.join(at)}" for word, at in positions.items())  # words hold no quotes


def _fit(row: tuple) -> tuple:
    """A message row as a database column holds it: a time's NUL replaced (it parses no better with it)."""
    at = row[1]
    return (row[0], at.replace("\x00", "\ufffd"), *row[2:]) if isinstance(at, str) and "\x00" in at else row


def _values(row: tuple) -> dict:
    return dict(zip(_SAVED, row, strict=True))


def _save_rows(connection: Connection, serial: int, before: list[tuple], after: list[tuple]) -> None:
    """Write only the insight rows that changed, as save_messages does with messages."""
    mine = _r.conversation_serial == serial
    for position in range(min(len(before), len(after))):
        if after[position] != before[position]:
            values = _values(after[position])
            connection.execute(sa.update(insight_rows).where(mine, _r.position == position).values(**values))
    if len(before) > len(after):
        connection.execute(sa.delete(insight_rows).where(mine, _r.position >= len(after)))
    new = [
        {"conversation_serial": serial, "position": position, **_values(after[position])}
        for position in range(len(before), len(after))
    ]
    if new:
        connection.execute(sa.insert(insight_rows), new)


def search_query(
    dialect: str, columns: Sequence, where: sa.ColumnElement, terms: Sequence[Term]
) -> sa.Select:
    """The matching conversations' columns, most relevant first (order ties are for the caller)."""
    if dialect == "sqlite":
        match = sa.literal_column(SEARCH).op("MATCH")(fts5_query(terms))
        joined = search_texts.join(conversations, _c.serial == search_texts.c.rowid)
        return sa.select(*columns).select_from(joined).where(where, match).order_by(_BM25)
    query = sa.cast(tsquery(terms), TSQUERY)  # words as written: the document holds them so
    document = search_vectors.c.document
    length = sa.func.ln(1 + sa.func.length(document))
    rank = sa.func.ts_rank(_TS_WEIGHTS, document, query, 0) / (1 + _TS_LENGTH * length)
    joined = search_vectors.join(conversations, _c.serial == search_vectors.c.conversation_serial)
    matching = sa.select(*columns).select_from(joined).where(where, document.op("@@")(query))
    return matching.order_by(rank.desc())


def snippets(connection: Connection, hits: list[tuple[int, str]], terms: Sequence[Term]) -> list[str]:
    """The snippet of each (serial, title) hit, from its messages read in one query per 500."""
    grouped: dict[int, list[tuple[str, str]]] = {serial: [] for serial, _ in hits}
    serials = list(grouped)
    for start in range(0, len(serials), _CHUNK):
        query = (
            sa.select(_m.conversation_serial, _m.role, _m.content)
            .where(_m.conversation_serial.in_(serials[start : start + _CHUNK]))
            .order_by(_m.conversation_serial, _m.position)
        )
        for serial, role, content in connection.execute(query):
            grouped[serial].append((role, content))
    return [snippet(title, grouped[serial], terms) for serial, title in hits]


def insight_tuples(connection: Connection, where: sa.ColumnElement[bool]) -> list[tuple]:
    """history.insights.message_rows() of the conversations `where` selects, by serial and position."""
    query = (
        sa.select(_c.id, *_ROW_COLUMNS)
        .select_from(insight_rows.join(conversations, _c.serial == _r.conversation_serial))
        .where(where)
        .order_by(_r.conversation_serial, _r.position)
    )
    return [tuple(row) for row in connection.execute(query)]


def imported_sources(connection: Connection, where: sa.ColumnElement[bool]) -> set[str]:
    """The 'app:id' of each conversation `where` selects whose extra names the import it came from."""
    extra = sa.cast(_c.extra, sa.Text)
    found = set()
    for text in connection.scalars(sa.select(extra).where(where, extra.contains('"source"'))):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        key = source_key(value.get("source")) if isinstance(value, dict) else None
        if key is not None:
            found.add(key)
    return found


def insights(connection: Connection, where: sa.ColumnElement[bool], start, end) -> insight_queries.Insights:
    """The Insights page's figures for the conversations `where` selects, aggregated by the database."""
    text = (sa.cast(_r.first_question, sa.Text).label("question"),
            sa.cast(_r.question_key, sa.Text).label("question_key"))  # JSON: grouped by its text
    plain = ("day", "month", "at_us", "role", "source", "latency_ms", "first_token_ms", "total_tokens",
             "feedback", "status")
    columns = [_c.id.label("conversation"), *(_r[name] for name in plain),
               _r.starts_conversation.label("starts"), *text]
    joined = insight_rows.join(conversations, _c.serial == _r.conversation_serial)
    rows = sa.select(*columns).select_from(joined).where(where).subquery("m")

    def run(query: sa.Select, values: dict | None = None) -> list:
        return connection.execute(query, values).all()

    return insight_queries.insights(run, insight_queries.Messages(rows, _decode), start, end)


def _decode(value: object) -> object:
    return None if value is None else json.loads(value)
