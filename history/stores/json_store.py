"""Conversations as one readable JSON file each in a folder: crash-safe, locked, quick to list."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd

from history import index, strict_json
from history.errors import ConversationExists, ConversationTooLarge
from history.index import Scope
from history.insight_queries import Insights
from history.models import (
    Conversation,
    ConversationSummary,
    InvalidConversation,
    check_message,
    is_valid_id,
)
from history.search import SearchHit
from history.stores.atomic import (
    Unreadable,
    check_regular,
    exclusive,
    fsync_dir,
    private_dirs,
    read_regular_file,
    tighten,
    write_atomic,
)
from history.stores.base import ANY_DAY, ConversationNotFound, Days, HistoryStore, UnreadableFile
from history.stores.folder_faults import folder_faults
from history.stores.folder_index import FolderIndex, ScanStats, index_for
from history.stores.folder_scan import SUFFIX, StatKey, stat_key
from history.stores.legacy import (
    COPY_ID,
    LEGACY_ID,
    continuation_of,
    legacy_conversation,
    parse_flask_history,
)
from history.stores.trash_listing import Trashed, TrashListing, TrashScan, trash_listing_for

MAX_FILE_BYTES = 20 * 2**20
LOCKS_DIR = ".locks"
TRASH_DIR = ".trash"
# Conversations share this many lock files, picked by a hash of the id, so `.locks/` never holds more
# however many ids come and go. They are never deleted: unlinking a lock file that another process has
# open (and may be waiting on) would let two writers hold "the same" lock (filelock's own caveat). A save
# takes milliseconds, so two conversations that share a lock file barely ever wait for each other.
LOCK_SLOTS = 256
OLD_CACHES = (".index.json", ".search-index", ".insights-index",  # what the index replaced, and where
              ".index.sqlite", ".index.sqlite-wal", ".index.sqlite-shm")  # it was before .index/
_SLOT_NAME = re.compile(r"^[0-9a-f]{2}\.lock$")
T = TypeVar("T")


def encode(conversation: Conversation) -> bytes:
    """Indented UTF-8 so a person can read and diff the file; strict JSON (no NaN).

    Every store checks a change with it before saving, so the same conversations fit everywhere.
    """
    try:
        text = json.dumps(conversation.to_dict(), ensure_ascii=False, indent=2, allow_nan=False)
    except ValueError:
        raise InvalidConversation(
            f"Conversation {conversation.id!r} holds a number JSON cannot store (NaN or infinity), "
            "so the change was not saved."
        ) from None
    data = (text + "\n").encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise ConversationTooLarge(
            f"Conversation {conversation.id!r} would grow past {MAX_FILE_BYTES // 2**20} MB, the most one "
            "conversation may hold, so the change was not saved; start a new conversation to go on "
            "(this one stays as it is)."
        )
    return data


def read_file(path: Path) -> tuple[Conversation, bool, os.stat_result]:
    """Load one conversation file, and whether it is the read-only Flask history; raises
    FileNotFoundError, or Unreadable saying what is wrong in words a user can act on."""
    raw, info = read_regular_file(path, MAX_FILE_BYTES)
    try:
        data = strict_json.loads(strict_json.text_of(raw))
    except strict_json.BadJson as problem:
        raise Unreadable(f"the file {problem.reason}") from None
    stem = path.name.removesuffix(SUFFIX)
    try:
        if stem == LEGACY_ID and isinstance(data, list):
            return legacy_conversation(parse_flask_history(data), info.st_mtime), True, info
        conversation = Conversation.from_dict(data)
    except InvalidConversation as error:
        raise Unreadable(str(error)) from None
    if conversation.id != stem:
        raise Unreadable(f"its 'id' is {conversation.id!r}, which does not match the file name")
    return conversation, False, info


def index_file(path: Path, info: os.stat_result) -> tuple[Conversation, bool, StatKey]:
    """Read one file for the index; problems visible in its directory entry skip the open."""
    if not is_valid_id(path.name.removesuffix(SUFFIX)):
        raise Unreadable("its name is not a valid conversation id (use only A-Z a-z 0-9 - _)")
    check_regular(info, MAX_FILE_BYTES)
    conversation, legacy, read_info = read_file(path)
    return conversation, legacy, stat_key(read_info)


def summarize_file(path: Path, info: os.stat_result) -> tuple[ConversationSummary, StatKey]:
    """Read one file for the trash's listing."""
    conversation, legacy, key = index_file(path, info)
    return conversation.summary(read_only=legacy), key


class JsonHistoryStore(HistoryStore):
    """HistoryStore on a folder of <id>.json files; safe across threads and processes.

    A change to the read-only Flask history goes to its copy, whose id the change returns.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self._tidy()

    def _tidy(self) -> None:
        """Close folders an older version left 0755, drop the lock file it kept for every id ever seen and
        the caches it kept beside the files (they held conversations' text, even of deleted ones)."""
        for folder in (self.root, self.root / TRASH_DIR, self.root / LOCKS_DIR):
            tighten(folder)
        for name in OLD_CACHES:
            with suppress(OSError):  # best effort: missing, or a read-only folder
                if stat.S_ISREG(os.lstat(self.root / name).st_mode):
                    os.unlink(self.root / name)
        locks = self.root / LOCKS_DIR
        if not locks.is_dir():
            return
        with suppress(OSError), os.scandir(locks) as entries:  # best effort: a read-only folder keeps them
            for entry in entries:
                if entry.name.endswith(".lock") and not _SLOT_NAME.match(entry.name):
                    os.unlink(entry.path)  # no process of this version ever opens these names

    @property
    def _index(self) -> FolderIndex:
        return index_for(self.root)

    @property
    def _trash(self) -> TrashListing:
        return trash_listing_for(self.root / TRASH_DIR)

    @property
    def trash_scan(self) -> TrashScan:
        """What the latest trash listing of this folder in this process parsed."""
        return self._trash.stats

    def lock_path(self, conversation_id: str) -> Path:
        """The lock file a change of this conversation holds (shared with other ids: LOCK_SLOTS)."""
        slot = hashlib.blake2b(conversation_id.encode("utf-8"), digest_size=1).digest()[0] % LOCK_SLOTS
        return self.root / LOCKS_DIR / f"{slot:02x}.lock"

    @property
    def last_scan(self) -> ScanStats:
        """What the latest pass over this folder in this process read."""
        return self._index.stats

    def path_for(self, conversation_id: str) -> Path:
        """The file of a conversation; ids that are not safe file names are never found."""
        if not is_valid_id(conversation_id):
            raise ConversationNotFound(conversation_id)
        return self.root / f"{conversation_id}{SUFFIX}"

    def exists(self, conversation_id: str) -> bool:
        """Whether something occupies that id's file name (create would refuse it)."""
        return is_valid_id(conversation_id) and os.path.lexists(self.path_for(conversation_id))

    def create(self, conversation: Conversation) -> Conversation:
        """Save a new conversation; ConversationExists (a FileExistsError) if the id is taken."""
        path = self.path_for(conversation.id)
        for position, message in enumerate(conversation.messages):
            check_message(message, position)
        data = encode(conversation)
        with self._locked(conversation.id):
            if os.path.lexists(path):
                raise ConversationExists(conversation.id)
            self._write(path, conversation, data)
        return conversation

    def get(self, conversation_id: str) -> Conversation:
        """The whole conversation; raises ConversationNotFound or InvalidConversation."""
        return self._load(self.path_for(conversation_id))[0]

    def page(
        self, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[ConversationSummary]:
        """Readable conversations newest first, from the index; only changed files are read again."""
        return self._query(lambda db, scope: index.page(db, scope, limit, offset), days)

    def count(self) -> int:
        return self._query(index.count)

    def search(
        self, query: str, limit: int | None = None, offset: int = 0, *, days: Days = ANY_DAY
    ) -> list[SearchHit]:
        """The index's FTS5 search (history/search.py says what a query means)."""
        return self._query(lambda db, scope: index.search(db, query, scope, limit, offset), days)

    def insight_rows(self) -> pd.DataFrame:
        return self._query(index.frame)

    def insights(self, start: date | None = None, end: date | None = None) -> Insights:
        return self._query(lambda db, scope: index.insights(db, scope, start, end))

    def imported_sources(self) -> set[str]:
        return self._query(index.sources)

    def unreadable(self) -> list[UnreadableFile]:
        """Files found by the last pass that could not be read."""
        if not self._index.scanned:
            self._refresh()
        return [UnreadableFile(name, reason) for name, reason in self._index.query(index.problems)]

    def prepare(self) -> None:
        """Bring the index up to date now (a server starting), not on the first page load."""
        self._refresh()

    def progress(self) -> tuple[int, int] | None:
        return self._index.progress

    def _refresh(self) -> None:
        with folder_faults(self.root, writing=False):
            self._index.refresh(lambda name, info: index_file(self.root / name, info))

    def _query(self, run: Callable[[sqlite3.Connection, Scope], T], days: Days = ANY_DAY) -> T:
        """run(the index, what it may show) once the index has seen every change to the files."""
        self._refresh()
        scope = Scope(hide_read_only=self._index.has(COPY_ID + SUFFIX), days=days)
        with folder_faults(self.root, writing=False):
            return self._index.query(lambda db: run(db, scope))

    def delete(self, conversation_id: str) -> None:
        """Move the file into .trash/ so it can be restored; unreadable files are left alone."""
        path = self._existing(conversation_id)
        with self._locked(conversation_id):
            self._load(path)
            trash = self.root / TRASH_DIR
            private_dirs(trash)
            os.replace(path, trash / path.name)  # replaces an older trashed copy of this id
            fsync_dir(trash)
            fsync_dir(self.root)

    def deleted(self) -> list[ConversationSummary]:
        """What is in .trash/ and can be restored, most recently deleted first; only files changed since
        the last call are read."""
        return [item.summary for item in self._trashed() if item.summary is not None]

    def purge_deleted(self, deleted_before: datetime) -> int:
        """Remove for good every trashed file deleted before that moment, readable or not; how many."""
        cutoff = round(deleted_before.timestamp() * 1e9)
        trash = self.root / TRASH_DIR
        removed = 0
        for item in self._trashed():
            conversation_id = item.name.removesuffix(SUFFIX)
            if item.deleted_ns >= cutoff or not is_valid_id(conversation_id):
                continue
            with self._locked(conversation_id):
                try:
                    info = os.lstat(trash / item.name)
                except FileNotFoundError:
                    continue  # restored or removed meanwhile
                if info.st_ctime_ns >= cutoff or stat.S_ISDIR(info.st_mode):
                    continue  # deleted again meanwhile, or not a conversation file
                os.unlink(trash / item.name)
                removed += 1
        if removed:
            fsync_dir(trash)
        return removed

    def delete_forever(self, conversation_id: str) -> None:
        """Remove one conversation from the trash for good; ConversationNotFound if it is not there."""
        trashed = self._existing(conversation_id, TRASH_DIR)
        with self._locked(conversation_id):
            try:
                os.unlink(trashed)
            except FileNotFoundError:
                raise ConversationNotFound(conversation_id) from None
            fsync_dir(trashed.parent)

    def _trashed(self) -> list[Trashed]:
        """Every file in the trash from the listing cache, most recently deleted first."""
        with folder_faults(self.root, writing=False):
            return self._trash.refresh(lambda name, info: summarize_file(self.root / TRASH_DIR / name, info))

    def get_deleted(self, conversation_id: str) -> Conversation:
        """A conversation in the trash, whole (to copy the trash elsewhere); raises like get()."""
        return self._load(self.root / TRASH_DIR / self.path_for(conversation_id).name)[0]

    def restore(self, conversation_id: str) -> None:
        """Move a deleted conversation back; ConversationExists if the id was reused meanwhile."""
        path = self.path_for(conversation_id)
        trashed = self._existing(conversation_id, TRASH_DIR)
        with self._locked(conversation_id):
            if os.path.lexists(path):
                raise ConversationExists(conversation_id)
            try:
                os.replace(trashed, path)
            except FileNotFoundError:
                raise ConversationNotFound(conversation_id) from None
            fsync_dir(self.root)
            fsync_dir(trashed.parent)

    @contextmanager
    def _locked(self, conversation_id: str) -> Iterator[None]:
        """Hold the conversation's lock for a change; any OSError in it is reported as a history error."""
        with folder_faults(self.root, writing=True), exclusive(self.lock_path(conversation_id)):
            yield

    def _existing(self, conversation_id: str, folder: str = ".") -> Path:
        """The file path in the folder (or the trash), checked before locking so misses never create
        folders."""
        path = self.root / folder / self.path_for(conversation_id).name
        if not os.path.lexists(path):
            raise ConversationNotFound(conversation_id)
        return path

    def _load(self, path: Path) -> tuple[Conversation, bool]:
        """Read a file, turning file problems into the store's exceptions."""
        with folder_faults(self.root, writing=False):
            try:
                conversation, legacy, _ = read_file(path)
            except FileNotFoundError:
                raise ConversationNotFound(path.name.removesuffix(SUFFIX)) from None
            except Unreadable as problem:
                raise InvalidConversation(UnreadableFile(path.name, problem.reason).message) from None
        return conversation, legacy

    def _change(self, conversation_id: str, change: Callable[[Conversation], None]) -> Conversation:
        """Read-modify-write under the conversation's lock, so concurrent changes all land."""
        path = self._existing(conversation_id)
        if conversation_id == LEGACY_ID and self._is_legacy(path):
            return self._continue_legacy(change)
        with self._locked(conversation_id):
            conversation, legacy = self._load(path)
            if legacy:
                raise InvalidConversation(f"'{path.name}' is the read-only Flask history")
            change(conversation)
            self._write(path, conversation, encode(conversation))
        return conversation

    def _is_legacy(self, path: Path) -> bool:
        try:
            return self._load(path)[1]
        except (ConversationNotFound, InvalidConversation):
            return False  # _change reports the problem under the lock

    def _continue_legacy(self, change: Callable[[Conversation], None]) -> Conversation:
        """Apply a change to the writable copy of the Flask history, making it first if needed."""
        copy_path = self.path_for(COPY_ID)
        with self._locked(COPY_ID):
            if os.path.lexists(copy_path):
                conversation = self._load(copy_path)[0]
            else:
                conversation = continuation_of(self.get(LEGACY_ID))
            change(conversation)
            self._write(copy_path, conversation, encode(conversation))
        return conversation

    def _write(self, path: Path, conversation: Conversation, data: bytes) -> None:
        info = write_atomic(path, data)
        self._index.record(path.name, info, conversation)
