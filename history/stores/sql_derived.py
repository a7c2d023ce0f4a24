"""Search and Insights answered by the database, from derived tables each change rewrites in its transaction.

The tables (made by the upgrade steps of history/stores/sql_schema.py, filled here from the conversations):
- `chatbot_search` (version 2): each conversation's words. PostgreSQL: a tsvector (`document`, the title's
  words weighted A) with a GIN index, kept in the row uncompressed (version 4), and (version 4) `live_owner`;
  SQLite: an FTS5 table (`title`, `body`) whose rowid is the serial.
- `chatbot_insight_rows` (version 2): history.insights.message_rows() of each conversation, by serial and
  position, and (version 3) its derived_values, which the Insights aggregates group by; (version 4) partial
  indexes on the model's times, of which the percentiles read a few values per day in order.
- `chatbot_insight_days` (version 4): history.insight_queries.day_totals of each conversation, one row per
  UTC day it has messages on (day NULL: undated), which the Insights counts sum.
The Insights tables and PostgreSQL's search table hold `live_owner`, the owner while the conversation is live
(NULL in the trash), so Insights reads them alone and a search ranks only the owner's matches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.engine import Connection

from history import insight_queries
from history.insight_queries import DAY_TOTALS, day_totals
from history.insights import COLUMNS, DERIVED, derived_values, message_rows
from history.models import Conversation, source_key
from history.search import FTS5_TOKENIZE, Term, body, fts5_query, snippet, tsquery, words
from history.stores.sql_rows import readable_conversations, save_rows
from history.stores.sql_schema import PREFIX, conversations, messages, serial_of_conversation

insights_metadata = sa.MetaData()
_COUNTS = ("latency_ms", "first_token_ms", "prompt_tokens", "completion_tokens", "total_tokens")
insight_rows = sa.Table(
    f"{PREFIX}insight_rows",
    insights_metadata,
    serial_of_conversation(),
    sa.Column("position", sa.Integer, primary_key=True),  # among the conversation's rows, from 0
    sa.Column("created_at", sa.Text),  # the rest: history.insights.COLUMNS after conversation_id
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16)),
    *(sa.Column(name, sa.Integer) for name in _COUNTS),
    sa.Column("feedback", sa.String(16)),
    sa.Column("first_question", sa.JSON(none_as_null=True)),  # JSON, as a message's text may hold NUL
    sa.Column("status", sa.String(16)),
    sa.Column("starts_conversation", sa.Boolean, nullable=False),
    sa.Column("at_us", sa.BigInteger), sa.Column("day", sa.Integer), sa.Column("month", sa.Integer),
    sa.Column("question_key", sa.JSON(none_as_null=True)),  # history.insights.DERIVED, all NULL when unknown
    sa.Column("live_owner", sa.String(200)),
)
# The percentiles' indexes, as the folder index has them (history/index.py): an owner's values of one day
# in order, and of every day; the terms are columns too, so SQLite checks them without the table.
_r = insight_rows.c
for _value, _complete in ((_r.latency_ms, [_r.status.is_(None)]), (_r.first_token_ms, [])):
    _model = sa.and_(_r.role == sa.literal_column("'assistant'"), _r.source == sa.literal_column("'model'"),
                     _value.is_not(None), *_complete)
    for _suffix, _columns in (("by_day", (_r.day, _value)), ("all", (_value, _r.day))):
        sa.Index(f"{PREFIX}insight_{_value.name}_{_suffix}", _r.live_owner, *_columns, _r.role, _r.source,
                 _r.status, postgresql_where=_model, sqlite_where=_model)
_DAY_NAMES = ("day", *DAY_TOTALS, "month", "question", "question_key", "question_at_us")  # day_totals' order
insight_days = sa.Table(
    f"{PREFIX}insight_days",
    insights_metadata,
    serial_of_conversation(),
    sa.Column("position", sa.Integer, primary_key=True),  # in day_totals' order, from 0
    sa.Column("day", sa.Integer),  # NULL: the conversation's undated messages
    *(sa.Column(name, sa.BigInteger if name == "tokens" else sa.Integer, nullable=False)
      for name in DAY_TOTALS),
    sa.Column("month", sa.Integer),
    sa.Column("question", sa.JSON(none_as_null=True)),  # the first question, its key and time, if on this day
    sa.Column("question_key", sa.JSON(none_as_null=True)),
    sa.Column("question_at_us", sa.BigInteger),
    sa.Column("live_owner", sa.String(200)),
)
sa.Index(f"{PREFIX}insight_days_owner", insight_days.c.live_owner, insight_days.c.day)

SEARCH = f"{PREFIX}search"
postgres_metadata = sa.MetaData()  # the search table of PostgreSQL; SQLite's FTS5 needs DDL of its own
search_vectors = sa.Table(
    SEARCH,
    postgres_metadata,
    serial_of_conversation(),
    sa.Column("document", TSVECTOR, nullable=False),
    sa.Column("live_owner", sa.String(200)),
)
sa.Index(f"{PREFIX}search_document", search_vectors.c.document, postgresql_using="gin")
sa.Index(f"{PREFIX}search_owner", search_vectors.c.live_owner)  # a small owner's rows in a shared database
# A document (~4 kB for 20 messages) kept in its row, not compressed out of line (pglz barely shrinks it): a
# search reads every match's document to check and rank it, which out of line costs a TOAST look-up each
_INLINE = f"ALTER TABLE {SEARCH} ALTER COLUMN document SET STORAGE MAIN"
search_texts = sa.table(SEARCH, sa.column("rowid"), sa.column("title"), sa.column("body"))  # SQLite's FTS5
_FTS5_TABLE = f"CREATE VIRTUAL TABLE {SEARCH} USING fts5(title, body, tokenize = '{FTS5_TOKENIZE}')"

_c, _m, _r, _d = conversations.c, messages.c, insight_rows.c, insight_days.c
_ROW_NAMES = COLUMNS[1:]  # insight_rows' own columns: conversation_id comes from the join
_ROW_COLUMNS = [_r[name] for name in _ROW_NAMES]
_SAVED = (*_ROW_NAMES, *DERIVED)  # what a derived row holds
_PERCENTILE_COLUMNS = ("day", "role", "source", "status", "latency_ms", "first_token_ms")
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


def create_tables(connection: Connection) -> None:
    """Every derived table, empty, in a new database."""
    _create_search(connection)
    insights_metadata.create_all(connection)


def add_search(connection: Connection) -> None:
    """The search table, filled from the conversations saved so far (the upgrade to version 2)."""
    _create_search(connection)
    fill(connection, texts=True, insights=False)


def rebuild(connection: Connection) -> None:
    """The Insights tables, and PostgreSQL's search table, made again and filled from the conversations
    saved so far (version 4)."""
    postgres = connection.dialect.name == "postgresql"
    tables = _with_live_owner(connection)
    for table in tables:
        table.drop(connection, checkfirst=True)
    for table in tables[:2]:
        table.create(connection)
    if postgres:
        _create_search(connection)
    fill(connection, texts=postgres, insights=True)
    if postgres:  # statistics now, not at autovacuum's next round: without them the planner picks the
        for table in tables:  # wrong percentile index, and the owner's share of the search table
            connection.exec_driver_sql(f"ANALYZE {table.name}")


def _with_live_owner(connection: Connection) -> list[sa.Table]:
    """The derived tables that carry `live_owner`: the Insights tables, and PostgreSQL's search table."""
    postgres = connection.dialect.name == "postgresql"
    return [insight_rows, insight_days, *([search_vectors] if postgres else [])]


def _create_search(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(_FTS5_TABLE)
    else:
        postgres_metadata.create_all(connection)
        connection.exec_driver_sql(_INLINE)


@dataclass(frozen=True)
class Derived:
    """What a conversation's derived rows hold: its insight rows (without the id), their day totals and
    its searchable text."""

    rows: list[tuple]
    days: list[tuple]
    title: str
    contents: list[str]


def derived(conversation: Conversation) -> Derived:
    """What the derived rows of this conversation, as it is now, should hold."""
    found = [_fit(row) for row in message_rows(conversation)]
    rows = [(*row, *more) for row, more in zip(found, derived_values(found), strict=True)]
    contents = [message["content"] for message in conversation.messages]
    return Derived([row[1:] for row in rows], day_totals(rows), conversation.title, contents)


def save(connection: Connection, serial: int, owner: str, before: Derived | None, after: Derived) -> None:
    """Bring a live conversation's derived rows from `before` (None: it has none yet) to `after`."""
    if before is None or (before.title, before.contents) != (after.title, after.contents):
        _save_text(connection, serial, owner, after, replace=before is not None)
    _save_insights(connection, serial, owner, before, after)


def set_live_owner(connection: Connection, serial: int, owner: str | None) -> None:
    """Count a conversation in its owner's Insights and searches (restored) or not (None: moved to the
    trash)."""
    for table in _with_live_owner(connection):
        where = table.c.conversation_serial == serial
        connection.execute(sa.update(table).where(where).values(live_owner=owner))


def remove(connection: Connection, serials: list[int]) -> None:
    """Delete SQLite's search texts of these conversations, which no foreign key removes with them (the
    other derived rows go with their conversation: ON DELETE CASCADE)."""
    if connection.dialect.name == "sqlite":
        connection.execute(sa.delete(search_texts).where(search_texts.c.rowid.in_(serials)))


def fill(connection: Connection, *, texts: bool, insights: bool) -> None:
    """The search texts or the Insights rows of every readable conversation, live or in the trash (the
    upgrades to version 2 and 4)."""
    serials = connection.scalars(sa.select(_c.serial).order_by(_c.serial)).all()
    for start in range(0, len(serials), _CHUNK):
        query = sa.select(conversations).where(_c.serial.in_(serials[start : start + _CHUNK]))
        rows = {row["serial"]: row for row in connection.execute(query).mappings()}
        for serial, conversation in readable_conversations(connection, list(rows.values())).items():
            made = derived(conversation)  # an unreadable one is never searched or counted
            owner = rows[serial]["owner"] if rows[serial]["deleted_at"] is None else None
            if texts:
                _save_text(connection, serial, owner, made, replace=False)
            if insights:
                _save_insights(connection, serial, owner, None, made)


def _save_text(
    connection: Connection, serial: int, owner: str | None, text: Derived, *, replace: bool
) -> None:
    if connection.dialect.name == "sqlite":  # FTS5 has no foreign key: a row deleted by hand leaves its text
        connection.execute(sa.delete(search_texts).where(search_texts.c.rowid == serial))
        values = {"rowid": serial, "title": text.title, "body": body(text.contents)}
        connection.execute(sa.insert(search_texts).values(**values))
        return
    if replace:
        connection.execute(sa.delete(search_vectors).where(search_vectors.c.conversation_serial == serial))
    document = sa.cast(document_text(text.title, text.contents), TSVECTOR)
    values = {"conversation_serial": serial, "document": document, "live_owner": owner}
    connection.execute(sa.insert(search_vectors).values(**values))


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


def _save_insights(connection: Connection, serial: int, owner: str | None, before: Derived | None,
                   after: Derived) -> None:
    """Write what changed of a conversation's Insights rows and day totals (new ones get `owner`)."""
    rows, days = (before.rows, before.days) if before else ([], [])
    save_rows(connection, insight_rows, serial, rows, after.rows, _named(_SAVED, after.rows),
              live_owner=owner)
    save_rows(connection, insight_days, serial, days, after.days, _named(_DAY_NAMES, after.days),
              live_owner=owner)


def _named(names: Sequence[str], rows: list[tuple]) -> Callable[[int], dict]:
    """The column values of the row at a position."""
    return lambda position: dict(zip(names, rows[position], strict=True))


def search_query(
    dialect: str, owner: str, columns: Sequence, where: sa.ColumnElement, terms: Sequence[Term]
) -> sa.Select:
    """The owner's matching conversations' columns (`where` selects among them), most relevant first (order
    ties are for the caller)."""
    if dialect == "sqlite":
        match = sa.literal_column(SEARCH).op("MATCH")(fts5_query(terms))
        joined = search_texts.join(conversations, _c.serial == search_texts.c.rowid)
        return sa.select(*columns).select_from(joined).where(where, match).order_by(_BM25)
    query = sa.cast(tsquery(terms), TSQUERY)  # words as written: the document holds them so
    document = search_vectors.c.document
    length = sa.func.ln(1 + sa.func.length(document))
    rank = sa.func.ts_rank(_TS_WEIGHTS, document, query, 0) / (1 + _TS_LENGTH * length)
    # The owner's matches are found and ranked first, on their own (MATERIALIZED): joined in one query, the
    # planner takes the listing's checks in `where` (functions of unknown selectivity) to pass a handful of
    # conversations and tests every one's document in turn instead of asking the GIN index
    hits = sa.select(search_vectors.c.conversation_serial, rank.label("rank"))
    hits = hits.where(search_vectors.c.live_owner == owner, document.op("@@")(query))
    hits = hits.cte("hits").prefix_with("MATERIALIZED")
    joined = hits.join(conversations, _c.serial == hits.c.conversation_serial)
    return sa.select(*columns).select_from(joined).where(where).order_by(hits.c.rank.desc())


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


def insights(connection: Connection, owner: str, damaged: sa.Select, start, end) -> insight_queries.Insights:
    """The Insights page's figures for the owner's live conversations, aggregated by the database from the
    derived tables alone; `damaged` selects the serials of live ones a listing cannot read (rows edited by
    hand: rare), which are left out, as insight_rows() leaves them out."""
    left_out = connection.scalars(damaged).all()

    def counted(table: sa.Table) -> list:
        kept = [table.c.conversation_serial.not_in(left_out)] if left_out else []
        return [table.c.live_owner == owner, *kept]

    rows = sa.select(*(_r[name] for name in _PERCENTILE_COLUMNS)).where(*counted(insight_rows)).subquery("m")
    days = sa.select(
        _d.conversation_serial.label("conversation"),
        *(_d[name] for name in _DAY_NAMES if not name.startswith("question")),
        *(sa.cast(_d[name], sa.Text).label(name) for name in ("question", "question_key")),  # JSON: as text
        _d.question_at_us,
    ).where(*counted(insight_days)).subquery("d")

    def run(query: sa.Select, values: dict | None = None) -> list:
        return connection.execute(query, values).all()

    return insight_queries.insights(run, insight_queries.Messages(rows, days, _decode), start, end)


def _decode(value: object) -> object:
    return None if value is None else json.loads(value)
