"""Conversations in a SQL database (PostgreSQL, or SQLite) through SQLAlchemy: the HistoryStore
contract of the JSON folder, for servers that share one database.

Tables, locking and the schema version: history/stores/sql_schema.py. How a conversation maps onto rows
without losing anything: history/stores/sql_rows.py. Listing pages, counts, search and the Insights
rows are queries (search and Insights on derived rows: history/stores/sql_derived.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from history.errors import ConversationExists
from history.insight_queries import Insights
from history.insights import messages_frame
from history.listing import day_bounds
from history.models import Conversation, ConversationSummary, InvalidConversation, check_message, is_valid_id
from history.search import SearchHit, query_terms
from history.stores import sql_derived
from history.stores.base import ANY_DAY, ConversationNotFound, Days, HistoryStore, UnreadableFile
from history.stores.changes import Change
from history.stores.json_store import encode
from history.stores.sql_rows import (
    conversation_from,
    conversation_values,
    listable,
    listing_entry,
    readable_conversations,
    save_messages,
)
from history.stores.sql_schema import conversations, engine_for, ensure_upgraded, messages, transaction

ADVICE = "fix or delete its rows in the history database and reload"
MAX_OWNER_LENGTH = 200
_CHUNK = 500  # ids per IN (...) list, well under SQLite's limit on bound parameters
_c = conversations.c
_m = messages.c
_SUMMARY_COLUMNS = (_c.id, _c.title, _c.created_at, _c.updated_at, _c.message_count,
                    _c.model, sa.cast(_c.extra, sa.Text), sa.cast(_c.layout, sa.Text))


def _stamp(moment: datetime) -> str:
    """A deleted_at text, to the microsecond so the trash keeps its order; all have this one width, so
    comparing the texts compares the times."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SqlHistoryStore(HistoryStore):
    """HistoryStore on SQLAlchemy tables; one owner's conversations, safe across threads and servers."""

    def __init__(self, engine_or_url: str | Engine, owner: str = "") -> None:
        if not isinstance(owner, str) or len(owner) > MAX_OWNER_LENGTH or "\x00" in owner:
            raise ValueError(f"owner must be text of at most {MAX_OWNER_LENGTH} characters")
        self.engine = engine_for(engine_or_url)
        self.owner = owner
        ensure_upgraded(self.engine)  # creates or upgrades the tables once per engine and process
        self._listable = listable(self.engine.dialect.name)
        # ties in the listing go to the larger id, compared as Python compares text, whatever the collation
        self._id_order = _c.id.collate("C") if self.engine.dialect.name == "postgresql" else _c.id

    def __repr__(self) -> str:
        return f"SqlHistoryStore({self.engine.url.render_as_string()!r}, owner={self.owner!r})"

    # Reading

    def exists(self, conversation_id: str) -> bool:
        """Whether a live row has that id (create would refuse it), readable or not."""
        if not is_valid_id(conversation_id):
            return False
        with transaction(self.engine, write=False) as connection:
            return self._row(connection, conversation_id) is not None

    def get(self, conversation_id: str) -> Conversation:
        """The whole conversation; raises ConversationNotFound or InvalidConversation."""
        return self._get(conversation_id, trashed=False)

    def get_deleted(self, conversation_id: str) -> Conversation:
        """A conversation in the trash, whole; raises like get()."""
        return self._get(conversation_id, trashed=True)

    def get_many(self, conversation_ids: Iterable[str]) -> dict[str, Conversation]:
        """The readable ones of these live conversations, in two queries per 500 ids (search, export)."""
        wanted = [i for i in dict.fromkeys(conversation_ids) if is_valid_id(i)]
        found: dict[str, Conversation] = {}
        with transaction(self.engine, write=False) as connection:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = sa.select(conversations).where(self._mine(False), _c.id.in_(chunk))
                rows = connection.execute(query).mappings().all()
                found.update((c.id, c) for c in readable_conversations(connection, rows).values())
        return found

    def page(
        self, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[ConversationSummary]:
        """Readable conversations newest first (ties: larger id first), cut and filtered in SQL."""
        query = self._newest(sa.select(*_SUMMARY_COLUMNS).where(self._live(days)), limit, offset)
        with transaction(self.engine, write=False) as connection:
            rows = connection.execute(query).all()
        return [entry for entry in map(listing_entry, rows) if not isinstance(entry, str)]

    def count(self) -> int:
        """How many conversations page() lists at most, counted in SQL."""
        query = sa.select(sa.func.count()).select_from(conversations).where(self._live(ANY_DAY))
        with transaction(self.engine, write=False) as connection:
            return connection.scalar(query)

    def unreadable(self) -> list[UnreadableFile]:
        """Live rows that cannot be read as conversations, by id, with why."""
        query = sa.select(*_SUMMARY_COLUMNS).where(self._mine(False), sa.not_(self._listable))
        query = query.order_by(self._id_order)
        with transaction(self.engine, write=False) as connection:
            rows = connection.execute(query).all()
        reasons = ((str(row[0]), listing_entry(row)) for row in rows)
        return [UnreadableFile(name, reason, ADVICE) for name, reason in reasons if isinstance(reason, str)]

    def search(
        self, query: str, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[SearchHit]:
        """Conversations holding every term (history/search.py), ranked by the database's full-text
        search, then newest; snippets cut only for the hits returned."""
        terms = query_terms(query)
        if not terms:
            return [SearchHit(summary, "") for summary in self.page(limit, offset, days=days)]
        dialect = self.engine.dialect.name
        columns = (_c.serial, *_SUMMARY_COLUMNS)
        ranked = sql_derived.search_query(dialect, self.owner, columns, self._live(days), terms)
        with transaction(self.engine, write=False) as connection:
            rows = connection.execute(self._newest(ranked, limit, offset)).all()
            found = [(row[0], entry) for row in rows if not isinstance(entry := listing_entry(row[1:]), str)]
            cuts = sql_derived.snippets(connection, [(serial, entry.title) for serial, entry in found], terms)
        return [SearchHit(entry, cut) for (_, entry), cut in zip(found, cuts, strict=True)]

    def insight_rows(self) -> pd.DataFrame:
        """history.insights.messages_frame of every readable live conversation, from chatbot_insight_rows."""
        with transaction(self.engine, write=False) as connection:
            rows = sql_derived.insight_tuples(connection, self._live(ANY_DAY))
        return messages_frame(rows)

    def insights(self, start: date | None = None, end: date | None = None) -> Insights:
        """The Insights figures of the live conversations, aggregated by the database in one snapshot."""
        damaged = sa.select(_c.serial).where(self._mine(False), sa.not_(self._listable))
        with transaction(self.engine, write=False) as connection:
            return sql_derived.insights(connection, self.owner, damaged, start, end)

    def imported_sources(self) -> set[str]:
        """The 'app:id' of each live conversation an import made, read from the extra column only."""
        with transaction(self.engine, write=False) as connection:
            return sql_derived.imported_sources(connection, self._live(ANY_DAY))

    def deleted(self) -> list[ConversationSummary]:
        """Readable conversations in the trash, most recently deleted first."""
        query = sa.select(*_SUMMARY_COLUMNS).where(self._mine(True))
        query = query.order_by(_c.deleted_at.desc(), _c.serial.desc())
        with transaction(self.engine, write=False) as connection:
            rows = connection.execute(query).all()
        return [entry for entry in map(listing_entry, rows) if not isinstance(entry, str)]

    # Writing: every change is one transaction holding its conversation's row lock

    def create(self, conversation: Conversation) -> Conversation:
        """Save a new conversation; ConversationExists (a FileExistsError) if the id is taken."""
        self._check_id(conversation.id)
        for index, message in enumerate(conversation.messages):
            check_message(message, index)
        encode(conversation)  # the JSON store's limits (size, strict JSON), so copies go both ways
        row = sa.insert(conversations).values(
            owner=self.owner, id=conversation.id, revision=1, **conversation_values(conversation)
        )
        with transaction(self.engine, write=True) as connection:
            if self._row(connection, conversation.id) is not None:
                raise ConversationExists(conversation.id)
            serial = self._unless_taken(connection, row, conversation.id).inserted_primary_key[0]
            save_messages(connection, serial, [], conversation.messages)
            sql_derived.save(connection, serial, self.owner, None, sql_derived.derived(conversation))
        return conversation

    def delete(self, conversation_id: str) -> None:
        """Move the conversation to the trash, replacing an older deleted copy of the same id."""
        self._check_id(conversation_id)
        with transaction(self.engine, write=True) as connection:
            row = self._found(connection, conversation_id, lock=True)
            self._decode(connection, row)  # an unreadable conversation is left alone, as a file is
            older = self._row(connection, conversation_id, trashed=True)
            if older is not None:
                self._remove(connection, [older["serial"]])
            deleted = sa.update(conversations).where(_c.serial == row["serial"])
            connection.execute(deleted.values(deleted_at=_stamp(datetime.now(UTC))))
            sql_derived.set_live_owner(connection, row["serial"], None)

    def restore(self, conversation_id: str) -> None:
        """Bring a deleted conversation back; ConversationExists if the id was reused meanwhile."""
        self._check_id(conversation_id)
        with transaction(self.engine, write=True) as connection:
            row = self._found(connection, conversation_id, trashed=True, lock=True)
            if self._row(connection, conversation_id) is not None:
                raise ConversationExists(conversation_id)
            back = sa.update(conversations).where(_c.serial == row["serial"]).values(deleted_at=None)
            self._unless_taken(connection, back, conversation_id)
            sql_derived.set_live_owner(connection, row["serial"], self.owner)

    def purge_deleted(self, deleted_before: datetime) -> int:
        """Remove for good every conversation in the trash deleted before that moment; how many."""
        old = sa.and_(self._mine(True), _c.deleted_at < _stamp(deleted_before))
        with transaction(self.engine, write=False) as connection:  # most page loads find nothing to do
            if connection.execute(sa.select(_c.serial).where(old).limit(1)).first() is None:
                return 0
        with transaction(self.engine, write=True) as connection:
            query = sa.select(_c.serial).where(old).with_for_update()
            serials = [row[0] for row in connection.execute(query)]
            for start in range(0, len(serials), _CHUNK):
                self._remove(connection, serials[start : start + _CHUNK])
        return len(serials)

    def delete_forever(self, conversation_id: str) -> None:
        """Remove one conversation from the trash for good; ConversationNotFound if it is not there."""
        self._check_id(conversation_id)
        with transaction(self.engine, write=True) as connection:
            row = self._found(connection, conversation_id, trashed=True, lock=True)
            self._remove(connection, [row["serial"]])

    # Helpers

    @staticmethod
    def _remove(connection: Connection, serials: list[int]) -> None:
        """Delete these conversations for good; their messages and derived rows go with them."""
        sql_derived.remove(connection, serials)
        connection.execute(sa.delete(conversations).where(_c.serial.in_(serials)))

    def _mine(self, trashed: bool):
        deleted = _c.deleted_at.is_not(None) if trashed else _c.deleted_at.is_(None)
        return sa.and_(_c.owner == self.owner, deleted)

    def _live(self, days: Days):
        """This owner's live conversations that can be listed, last updated within `days`."""
        start, end = day_bounds(days)
        return sa.and_(
            self._mine(False),
            self._listable,
            *([_c.updated_order >= start] if start is not None else []),
            *([_c.updated_order < end] if end is not None else []),
        )

    def _newest(self, query: sa.Select, limit: int | None, offset: int) -> sa.Select:
        """The query ordered newest first (after its own order), `limit` rows after the first `offset`."""
        ordered = query.order_by(_c.updated_order.desc(), self._id_order.desc())
        return ordered.limit(limit).offset(offset or None)

    def _row(self, connection: Connection, conversation_id: str, *, trashed=False, lock=False):
        query = sa.select(conversations).where(self._mine(trashed), _c.id == conversation_id)
        return connection.execute(query.with_for_update() if lock else query).mappings().first()

    def _found(self, connection: Connection, conversation_id: str, *, trashed=False, lock=False):
        """The row, or ConversationNotFound; with `lock`, locked until the transaction ends (SQLite: the
        write transaction locks all)."""
        row = self._row(connection, conversation_id, trashed=trashed, lock=lock)
        if row is None:
            raise ConversationNotFound(conversation_id)
        return row

    @staticmethod
    def _unless_taken(connection: Connection, statement, conversation_id: str):
        """Execute a statement that makes a live row; ConversationExists if another server made one
        with that id between our check and now (the unique index refuses the second)."""
        try:
            return connection.execute(statement)
        except sa.exc.IntegrityError:
            raise ConversationExists(conversation_id) from None

    @staticmethod
    def _check_id(conversation_id: str) -> None:
        if not is_valid_id(conversation_id):
            raise ConversationNotFound(conversation_id)

    def _decode(self, connection: Connection, row) -> Conversation:
        query = sa.select(messages).where(_m.conversation_serial == row["serial"]).order_by(_m.position)
        try:
            return conversation_from(row, connection.execute(query).mappings().all())
        except InvalidConversation as error:
            raise InvalidConversation(UnreadableFile(row["id"], str(error), ADVICE).message) from None

    def _get(self, conversation_id: str, *, trashed: bool) -> Conversation:
        self._check_id(conversation_id)
        with transaction(self.engine, write=False) as connection:
            return self._decode(connection, self._found(connection, conversation_id, trashed=trashed))

    def _change(self, conversation_id: str, change: Change) -> Conversation:
        """Read-modify-write under the conversation's row lock, so concurrent changes all land."""
        self._check_id(conversation_id)
        with transaction(self.engine, write=True) as connection:
            row = self._found(connection, conversation_id, lock=True)
            conversation = self._decode(connection, row)
            before = [list(message.items()) for message in conversation.messages]
            was = sql_derived.derived(conversation)
            change(conversation)
            encode(conversation)  # the same limits as the JSON store: size cap, strict JSON
            save_messages(connection, row["serial"], before, conversation.messages)
            sql_derived.save(connection, row["serial"], self.owner, was, sql_derived.derived(conversation))
            connection.execute(
                sa.update(conversations)
                .where(_c.serial == row["serial"])
                .values(revision=row["revision"] + 1, **conversation_values(conversation))
            )
        return conversation


def owners(target: str | Engine) -> list[str]:
    """Every owner with conversations (live or deleted) in the database, "" (shared) first."""
    engine = engine_for(target)
    ensure_upgraded(engine)
    with transaction(engine, write=False) as connection:
        return sorted(connection.scalars(sa.select(conversations.c.owner).distinct()))
