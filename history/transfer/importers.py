"""Import conversations from a file the user uploads; the format is recognised from its content.

Formats: this app's history files (one, a list, or the export zip), ChatGPT's conversations.json
(or its data-export zip), an OpenAI messages list, and the Flask MVP's list. A file is validated
and converted before anything is written, so a malformed one imports nothing; it is read only up to
the import limits (history/transfer/import_limits.py): a list is decoded one item at a time and the rest is
never decoded once the conversation limit is reached, and a zip is never unpacked past its budget.
"""

from __future__ import annotations

import io
import itertools
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from history import strict_json
from history.errors import ConversationExists, HistoryUnavailable
from history.models import MAX_TITLE_LENGTH, ROLES, moment_of, new_id
from history.stores.base import HistoryStore
from history.transfer.chatgpt_import import chatgpt_conversations
from history.transfer.export import README_NAME
from history.transfer.import_formats import (
    ACCEPTED,
    FORMAT_FLASK,
    FORMAT_OPENAI,
    Candidate,
    ImportFailed,
    Parsed,
    flask_conversation,
    openai_conversation,
    schema_conversations,
)
from history.transfer.import_limits import ImportLimits, mb

__all__ = ["ACCEPTED", "ImportFailed", "ImportLimits", "ImportReport", "import_file"]

MAX_IMPORT_BYTES = 20 * 2**20
MAX_ZIP_MEMBERS = 100_000
ALREADY_HERE = "is already in your history"
ALREADY_IMPORTED = "was already imported"
TWICE_IN_FILE = "has the same id as another conversation in this file"
_SHOWN_SKIPS = 5
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_FLASK_KEYS = frozenset({"role", "content", "created_at"})
_NOTHING = object()
MIXED = "objects of different kinds (conversations, messages)"
Progress = Callable[[float, str], None]  # (fraction done, what is happening), while an import runs


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass
class ImportReport:
    """What an import did, for the message the user sees."""

    format: str
    imported: list[tuple[str, str, int]] = field(default_factory=list)  # (id, title, messages)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    tool_messages: int = 0  # tool calls and results left out of the imported conversations
    non_text_messages: int = 0  # images, files or code without text, left out
    titles_cut: int = 0  # titles longer than MAX_TITLE_LENGTH, cut to it
    limit: tuple[str, int, str] | None = None  # (what, value, setting) when a limit stopped the import

    @property
    def conversations(self) -> int:
        return len(self.imported)

    @property
    def messages(self) -> int:
        return sum(count for _, _, count in self.imported)

    def summary(self) -> str:
        """A few sentences: what came in, what was left out or cut, the limit that stopped it, the skips."""
        if self.imported:
            head = (
                f"Imported {_plural(self.conversations, 'conversation')} "
                f"({_plural(self.messages, 'message')}) from {self.format}."
            )
        else:
            head = f"Imported nothing from {self.format}."
        sentences = [head]
        left = []
        if self.tool_messages:
            left.append(_plural(self.tool_messages, "tool message"))
        if self.non_text_messages:
            left.append(f"{_plural(self.non_text_messages, 'message')} without text (images, files or code)")
        if left:
            sentences.append(f"Left out {' and '.join(left)}.")
        if self.titles_cut:
            sentences.append(f"Cut {_plural(self.titles_cut, 'title')} to {MAX_TITLE_LENGTH} characters.")
        if self.limit:
            what, value, setting = self.limit
            sentences.append(
                f"Stopped at {value:,} {what}, the most one import takes ({setting}); the rest of the file "
                "was not imported. Import it again to bring in the next ones."
            )
        if self.skipped:
            shown = "; ".join(f"'{label}' {reason}" for label, reason in self.skipped[:_SHOWN_SKIPS])
            more = len(self.skipped) - _SHOWN_SKIPS
            shown += f"; and {more} more" if more > 0 else ""
            sentences.append(f"Skipped {len(self.skipped)}: {shown}.")
        return " ".join(sentences)


def _lazily(name: str, items: Iterator[object]) -> Iterator[object]:
    """A list's items as they are decoded; a fault further down is ImportFailed when it is reached."""
    try:
        yield from items
    except strict_json.BadJson as problem:
        raise ImportFailed(name, problem.reason) from None


def _decoded(name: str, data: bytes) -> object:
    """The file's JSON, a list as an iterator of its items; ImportFailed saying what is wrong."""
    try:
        text = strict_json.text_of(data)
        if strict_json.is_list(text):
            return _lazily(name, strict_json.items(text))
        return strict_json.loads(text)
    except strict_json.BadJson as problem:
        raise ImportFailed(name, problem.reason) from None


def _is_schema(item: dict) -> bool:
    has_schema_keys = "id" in item and "created_at" in item and isinstance(item.get("messages"), list)
    return "schema_version" in item or has_schema_keys


def _is_flask(items: list) -> bool:
    """Exactly what the Flask MVP wrote: role and content only, in the three chat roles."""
    return all(
        item.keys() <= _FLASK_KEYS and item.get("role") in ROLES and isinstance(item.get("content"), str)
        for item in items
    )


def _describe(value: object) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


def _kind(item: dict) -> str | None:
    """What one item of a list is: a ChatGPT conversation, one of ours, or a message."""
    if "mapping" in item:
        return "chatgpt"
    if _is_schema(item):
        return "schema"
    return "messages" if "role" in item else None


def _dict_shape(name: str, value: dict, parsed: Parsed) -> str:
    if "mapping" in value:
        return chatgpt_conversations(name, [value], parsed)
    if _is_schema(value):
        return schema_conversations(name, [value], parsed, in_list=False)
    if isinstance(value.get("messages"), list):
        return openai_conversation(name, value, parsed)
    raise ImportFailed(name, "is a JSON object with neither a 'messages' list nor a ChatGPT 'mapping'")


def _all_of_kind(name: str, items: Iterator[object], kind: str | None) -> Iterator[dict]:
    """The list's items, each checked to be an object of the first item's kind as it comes."""
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            what = f"item {index + 1} is {_describe(item)}"
            raise ImportFailed(name, f"is a JSON list whose {what}, not an object")
        if kind is None or _kind(item) != kind:
            raise ImportFailed(name, f"is a JSON list mixing {MIXED}")
        yield item


def _list_shape(name: str, items: Iterator[object], parsed: Parsed) -> str:
    first = next(items, _NOTHING)
    if first is _NOTHING:
        raise ImportFailed(name, "holds an empty list: there is nothing to import")
    kind = _kind(first) if isinstance(first, dict) else None
    stream = _all_of_kind(name, itertools.chain([first], items), kind)
    if kind == "chatgpt":
        return chatgpt_conversations(name, stream, parsed)
    if kind == "schema":
        return schema_conversations(name, stream, parsed)
    messages = list(itertools.islice(stream, parsed.limits.max_messages + 1))
    flask = _is_flask(messages)
    if len(messages) > parsed.limits.max_messages:  # the rest of the list is never decoded
        parsed.skipped.append((name, parsed.limits.too_many_messages(None)))
        return FORMAT_FLASK if flask else FORMAT_OPENAI
    convert = flask_conversation if flask else openai_conversation
    return convert(name, messages, parsed)


def parse_value(name: str, value: object, parsed: Parsed) -> str:
    """Recognise a decoded file by its shape and convert it into `parsed`; its format, or ImportFailed."""
    if isinstance(value, dict):
        return _dict_shape(name, value, parsed)
    if isinstance(value, Iterator):
        return _list_shape(name, value, parsed)
    raise ImportFailed(name, f"holds {_describe(value)}, not a conversation or a list")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, name: str) -> bytes:
    """A member's bytes, reading no more than the budget whatever its header claims (zip bombs)."""
    with archive.open(info) as member:
        data = member.read(budget + 1)
    if len(data) > budget:
        raise ImportFailed(name, "unzips to more than its header says, past the size limit")
    return data


def _ignored(member: str) -> bool:
    """Our own README and the folders and dot files archivers add, skipped without comment."""
    path = PurePosixPath(member)
    return member == README_NAME or path.parts[0] == "__MACOSX" or path.name.startswith(".")


def _unpacked(name: str, infos: list[zipfile.ZipInfo], limits: ImportLimits) -> None:
    """Refuse before reading when the members to read claim more than the budget (zip bombs)."""
    too_much = limits.unpacked_too_much(sum(info.file_size for info in infos))
    if too_much:
        raise ImportFailed(name, too_much)


def _zip_members(name: str, archive: zipfile.ZipFile, parsed: Parsed) -> str:
    infos = [info for info in archive.infolist() if not info.is_dir() and not _ignored(info.filename)]
    budget = parsed.limits.max_unpacked_bytes
    chatgpt = [info for info in infos if PurePosixPath(info.filename).name == "conversations.json"]
    if chatgpt:  # ChatGPT's data export: only conversations.json holds conversations
        _unpacked(name, chatgpt[:1], parsed.limits)
        return parse_value(name, _decoded(name, _read_member(archive, chatgpt[0], budget, name)), parsed)
    files = [info for info in infos if info.filename.lower().endswith(".json")]
    if not files:
        raise ImportFailed(name, "is a zip with no .json conversation files in it")
    _unpacked(name, files, parsed.limits)
    skipped = [(info.filename, "is not a JSON file") for info in infos if info not in files]
    formats = set()
    for info in files:
        if parsed.full:
            parsed.stopped = True
            break
        data = _read_member(archive, info, budget, name)
        budget -= len(data)
        before = (len(parsed.candidates), len(parsed.skipped), parsed.titles_cut)
        try:
            formats.add(parse_value(info.filename, _decoded(info.filename, data), parsed))
        except ImportFailed as failure:  # this member is skipped whole, the others still come in
            del parsed.candidates[before[0] :], parsed.skipped[before[1] :]
            parsed.titles_cut = before[2]
            skipped.append((info.filename, failure.problem))
    parsed.skipped = skipped + parsed.skipped
    return f"{formats.pop()} (zip)" if len(formats) == 1 else "zip archive"


def parse_zip(name: str, data: bytes, parsed: Parsed) -> str:
    """A zip of conversation files, read in memory; damaged or oversized zips import nothing."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                limit = f"{MAX_ZIP_MEMBERS:,}"
                raise ImportFailed(name, f"is a zip of {len(infos):,} files; the limit is {limit}")
            return _zip_members(name, archive, parsed)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ImportFailed(name, f"is a damaged zip file ({error})") from None
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or an unknown compression
        raise ImportFailed(name, f"is a zip this app cannot open ({error})") from None


class _Duplicates:
    """Why a candidate is already in the history or earlier in the file, asked as the file is read."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.history_sources: set[str] | None = None  # read once, when the first import source shows up
        self.sources: set[str] = set()
        self.ids: set[str] = set()

    def __call__(self, candidate: Candidate) -> str | None:
        if candidate.source:
            if self.history_sources is None:
                self.history_sources = self.store.imported_sources()
            if candidate.source in self.history_sources or candidate.source in self.sources:
                return ALREADY_IMPORTED
            self.sources.add(candidate.source)
        if candidate.keep_id:
            conversation_id = candidate.conversation.id
            if conversation_id in self.ids:
                return TWICE_IN_FILE
            if self.store.exists(conversation_id):
                return ALREADY_HERE
            self.ids.add(conversation_id)
        return None


def _fresh_id(store: HistoryStore, created_at: str, taken: set[str]) -> str:
    """A new id dated like the conversation (now, for a hand-edited time that is not ISO), unused in the
    store and in this import."""
    while True:
        new = new_id(moment_of(created_at))
        if new not in taken and not store.exists(new):
            return new


def _stopped(error: HistoryUnavailable, report: ImportReport, total: int) -> HistoryUnavailable:
    """The same failure, saying how far the import got: importing the file again adds only the rest."""
    if not report.imported:
        return error
    return type(error)(
        f"Imported {report.conversations} of {total} conversations, then stopped: {error.message} "
        "Importing the file again adds only the rest."
    )


def _save_one(store: HistoryStore, candidate: Candidate, taken: set[str]) -> str | None:
    """Write one validated conversation; None when saved, else why it was skipped."""
    conversation = candidate.conversation
    if not candidate.keep_id:
        conversation.id = _fresh_id(store, conversation.created_at, taken)
    try:
        store.create(conversation)
    except ConversationExists:  # saved by another window since the file was read
        return ALREADY_HERE
    taken.add(conversation.id)
    return None


def _save(store: HistoryStore, parsed: Parsed, progress: Progress | None) -> ImportReport:
    """Write the validated conversations one by one, saying how far it got; stops with the store's
    HistoryUnavailable (full, read-only, busy, unreachable) if it cannot write."""
    report = ImportReport(parsed.format, skipped=list(parsed.skipped), titles_cut=parsed.titles_cut)
    if parsed.stopped:
        report.limit = parsed.limits.conversations_reached()
    taken: set[str] = set()
    total = len(parsed.candidates)
    step = max(1, total // 100)  # at most a hundred progress updates
    try:
        for number, candidate in enumerate(parsed.candidates, 1):
            conversation = candidate.conversation
            skipped = _save_one(store, candidate, taken)
            if skipped:
                report.skipped.append((conversation.title, skipped))
            else:
                report.imported.append((conversation.id, conversation.title, len(conversation.messages)))
                report.tool_messages += candidate.left_out["tool"]
                report.non_text_messages += candidate.left_out["non_text"]
            if progress is not None and (number % step == 0 or number == total):
                progress(number / total, f"Saving conversation {number:,} of {total:,}…")
    except HistoryUnavailable as error:
        raise _stopped(error, report, total) from error
    return report


def import_file(
    store: HistoryStore,
    name: str,
    data: bytes,
    *,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an uploaded file into the store, up to the limits; raises ImportFailed (nothing saved) if
    it cannot be read, and the store's HistoryUnavailable, saying how many came in before, if it cannot
    be written. `progress` hears how far it got while it runs."""
    if progress is not None:
        progress(0.0, "Reading the file…")
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFailed(name, f"is {mb(len(data))} MB; the limit is {mb(MAX_IMPORT_BYTES)} MB")
    parsed = Parsed(_Duplicates(store), limits or ImportLimits())
    if data.startswith(_ZIP_MAGIC):
        parsed.format = parse_zip(name, data, parsed)
    else:
        parsed.format = parse_value(name, _decoded(name, data), parsed)
    return _save(store, parsed, progress)
