"""Import conversations from a file the user uploads; the format is recognised from its content.

Formats: this app's history files (one, a list, or the export zip), ChatGPT's conversations.json
(or its data-export zip), an OpenAI messages list, and the Flask MVP's list. A file is validated
and converted whole before anything is written, so a malformed one imports nothing.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from history.atomic import Unreadable
from history.chatgpt_import import chatgpt_conversations, id_at
from history.errors import ConversationExists, HistoryUnavailable
from history.export import README_NAME
from history.import_formats import (
    ACCEPTED,
    Candidate,
    ImportFailed,
    Parsed,
    flask_conversation,
    openai_conversation,
    schema_conversations,
)
from history.json_store import decode
from history.models import ROLES, utc_now
from history.search import imported_sources
from history.store import HistoryStore

__all__ = ["ACCEPTED", "ImportFailed", "ImportReport", "import_file"]

MAX_IMPORT_BYTES = 20 * 2**20
MAX_UNZIPPED_BYTES = 200 * 2**20  # a zip may not inflate past this in total (zip bombs)
MAX_ZIP_MEMBERS = 100_000
ALREADY_HERE = "is already in your history"
ALREADY_IMPORTED = "was already imported"
TWICE_IN_FILE = "has the same id as another conversation in this file"
_SHOWN_SKIPS = 5
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_FLASK_KEYS = frozenset({"role", "content", "created_at"})


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


@dataclass
class ImportReport:
    """What an import did, for the message the user sees."""

    format: str
    imported: list[tuple[str, str, int]] = field(default_factory=list)  # (id, title, messages)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    tool_messages: int = 0  # tool calls and results left out of the imported conversations
    non_text_messages: int = 0  # images, files or code without text, left out

    @property
    def conversations(self) -> int:
        return len(self.imported)

    @property
    def messages(self) -> int:
        return sum(count for _, _, count in self.imported)

    def summary(self) -> str:
        """One or three sentences: what came in, what was left out, what was skipped and why."""
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
        if self.skipped:
            shown = "; ".join(f"'{label}' {reason}" for label, reason in self.skipped[:_SHOWN_SKIPS])
            more = len(self.skipped) - _SHOWN_SKIPS
            shown += f"; and {more} more" if more > 0 else ""
            sentences.append(f"Skipped {len(self.skipped)}: {shown}.")
        return " ".join(sentences)


def _decoded(name: str, data: bytes) -> object:
    """JSON from bytes, or ImportFailed saying what is wrong (empty, not UTF-8, not JSON)."""
    try:
        return decode(data)
    except Unreadable as problem:
        raise ImportFailed(name, problem.reason.replace("the file ", "", 1)) from None


def _is_schema(item: object) -> bool:
    if not isinstance(item, dict):
        return False
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


def _dict_shape(name: str, value: dict) -> Parsed:
    if "mapping" in value:
        return chatgpt_conversations(name, value)
    if _is_schema(value):
        return schema_conversations(name, [value])
    if isinstance(value.get("messages"), list):
        return openai_conversation(name, value)
    raise ImportFailed(name, "is a JSON object with neither a 'messages' list nor a ChatGPT 'mapping'")


def _list_shape(name: str, value: list) -> Parsed:
    if not value:
        raise ImportFailed(name, "holds an empty list: there is nothing to import")
    if not all(isinstance(item, dict) for item in value):
        odd = next(i for i, item in enumerate(value) if not isinstance(item, dict))
        kind = _describe(value[odd])
        raise ImportFailed(name, f"is a JSON list whose item {odd + 1} is {kind}, not an object")
    if all("mapping" in item for item in value):
        return chatgpt_conversations(name, value)
    if all(_is_schema(item) for item in value):
        return schema_conversations(name, value)
    if all("role" in item for item in value):
        return flask_conversation(name, value) if _is_flask(value) else openai_conversation(name, value)
    raise ImportFailed(name, "is a JSON list mixing objects of different kinds (conversations, messages)")


def parse_value(name: str, value: object) -> Parsed:
    """Recognise a decoded file by its shape and convert it; ImportFailed if nothing fits."""
    if isinstance(value, dict):
        return _dict_shape(name, value)
    if isinstance(value, list):
        return _list_shape(name, value)
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


def _zip_members(name: str, archive: zipfile.ZipFile, budget: int) -> Parsed:
    infos = [info for info in archive.infolist() if not info.is_dir() and not _ignored(info.filename)]
    chatgpt = [info for info in infos if PurePosixPath(info.filename).name == "conversations.json"]
    if chatgpt:  # ChatGPT's data export: only conversations.json holds conversations
        info = chatgpt[0]
        return parse_value(name, _decoded(name, _read_member(archive, info, budget, name)))
    result: Parsed | None = None
    skipped: list[tuple[str, str]] = []
    formats = set()
    for info in infos:
        if not info.filename.lower().endswith(".json"):
            skipped.append((info.filename, "is not a JSON file"))
            continue
        data = _read_member(archive, info, budget, name)
        budget -= len(data)
        try:
            parsed = parse_value(info.filename, _decoded(info.filename, data))
        except ImportFailed as failure:
            skipped.append((info.filename, failure.problem))
            continue
        formats.add(parsed.format)
        result = result or Parsed(parsed.format)
        result.candidates += parsed.candidates
        result.skipped += parsed.skipped
    if result is None and not any(info.filename.lower().endswith(".json") for info in infos):
        raise ImportFailed(name, "is a zip with no .json conversation files in it")
    result = result or Parsed("zip archive")
    result.format = f"{formats.pop()} (zip)" if len(formats) == 1 else "zip archive"
    result.skipped = skipped + result.skipped
    return result


def parse_zip(name: str, data: bytes, max_unzipped: int) -> Parsed:
    """A zip of conversation files, read in memory; damaged or oversized zips import nothing."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                limit = f"{MAX_ZIP_MEMBERS:,}"
                raise ImportFailed(name, f"is a zip of {len(infos):,} files; the limit is {limit}")
            total = sum(info.file_size for info in infos)
            if total > max_unzipped:
                raise ImportFailed(name, f"unzips to {_mb(total)} MB; the limit is {_mb(max_unzipped)} MB")
            return _zip_members(name, archive, max_unzipped)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ImportFailed(name, f"is a damaged zip file ({error})") from None
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or an unknown compression
        raise ImportFailed(name, f"is a zip this app cannot open ({error})") from None


def parse_file(
    name: str, data: bytes, *, max_bytes: int = MAX_IMPORT_BYTES, max_unzipped_bytes: int = MAX_UNZIPPED_BYTES
) -> Parsed:
    """Everything a file holds, validated, without writing; ImportFailed if it cannot be imported."""
    if len(data) > max_bytes:
        raise ImportFailed(name, f"is {_mb(len(data))} MB; the limit is {_mb(max_bytes)} MB")
    if data.startswith(_ZIP_MAGIC):
        return parse_zip(name, data, max_unzipped_bytes)
    return parse_value(name, _decoded(name, data))


def _fresh_id(store: HistoryStore, created_at: str, taken: set[str]) -> str:
    """A new id dated like the conversation, unused in the store and in this import."""
    try:
        id_at(created_at)
    except ValueError:  # a hand-edited creation time that is not ISO: date the id now
        created_at = utc_now()
    while True:
        new = id_at(created_at)
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


def _save_one(store: HistoryStore, candidate: Candidate, sources: set[str], taken: set[str]) -> str | None:
    """Write one validated conversation; None when saved, else why it was skipped."""
    conversation = candidate.conversation
    if candidate.source and candidate.source in sources:
        return ALREADY_IMPORTED
    if candidate.keep_id and (conversation.id in taken or store.exists(conversation.id)):
        return TWICE_IN_FILE if conversation.id in taken else ALREADY_HERE
    if not candidate.keep_id:
        conversation.id = _fresh_id(store, conversation.created_at, taken)
    try:
        store.create(conversation)
    except ConversationExists:
        return ALREADY_HERE
    taken.add(conversation.id)
    if candidate.source:
        sources.add(candidate.source)
    return None


def _save(store: HistoryStore, parsed: Parsed) -> ImportReport:
    """Write the validated conversations one by one, skipping any already in the history; stops
    with the store's HistoryUnavailable (full, read-only, busy, unreachable) if it cannot write."""
    report = ImportReport(parsed.format, skipped=list(parsed.skipped))
    taken: set[str] = set()
    try:
        sources = imported_sources(store) if any(c.source for c in parsed.candidates) else set()
        for candidate in parsed.candidates:
            conversation = candidate.conversation
            skipped = _save_one(store, candidate, sources, taken)
            if skipped:
                report.skipped.append((conversation.title, skipped))
                continue
            report.imported.append((conversation.id, conversation.title, len(conversation.messages)))
            report.tool_messages += candidate.tool_messages
            report.non_text_messages += candidate.non_text_messages
    except HistoryUnavailable as error:
        raise _stopped(error, report, len(parsed.candidates)) from error
    return report


def import_file(
    store: HistoryStore,
    name: str,
    data: bytes,
    *,
    max_bytes: int = MAX_IMPORT_BYTES,
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES,
) -> ImportReport:
    """Import an uploaded file into the store; raises ImportFailed (nothing saved) if it cannot be read,
    and the store's HistoryUnavailable, saying how many came in before, if it cannot be written."""
    parsed = parse_file(name, data, max_bytes=max_bytes, max_unzipped_bytes=max_unzipped_bytes)
    return _save(store, parsed)
