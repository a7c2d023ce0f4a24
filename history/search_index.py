"""The text of every conversation, ready to search: kept in memory and in a hidden index file.

Like the listing cache, each entry is keyed by its file's (mtime_ns, size, inode), so only files
that changed are parsed again. The index file lets the first search after a restart skip parsing
every file; it is only a cache: a missing, stale or corrupt one is rebuilt silently.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from history.index_file import IndexFile
from history.models import Conversation
from history.stores.atomic import Unreadable
from history.summary_cache import PerFolder, StatKey

SEPARATOR = "\x1e"  # between the title and each message; never part of a query
SEPARATOR_BYTES = SEPARATOR.encode("ascii")
INDEX_NAME = ".search-index"
INDEX_MAGIC = b"chatbot-search-index 1\n"
SAVE_AFTER_CHANGES = 100  # a search that parsed this many files rewrites the index at once
SAVE_INTERVAL = 300.0  # otherwise at most this often (seconds), when anything changed
_MAX_INDEX_BYTES = 2 * 2**30
_ROLE_LETTERS = {"system": "s", "user": "u", "assistant": "a"}

# Reads one conversation file by name: the conversation and the stat key of what was read.
Reader = Callable[[str], tuple[Conversation, StatKey]]


def fold(text: str) -> str:
    """Lowercase that keeps every character's position, so a match maps back onto the original."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)  # e.g. 'İ' grows


def source_key(conversation: Conversation) -> str | None:
    """'app:id' of the conversation an import came from, so it is not imported twice."""
    source = conversation.extra.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("app"), str):
        return None
    ident = source.get("id") if source.get("id") is not None else source.get("sha256")
    return f"{source['app']}:{ident}" if isinstance(ident, str | int) else None


@dataclass(slots=True)
class Doc:
    """One conversation's searchable text as UTF-8: title and messages joined by SEPARATOR.

    Bytes, not str: one byte per ASCII character whatever else the text holds (a str with one
    emoji takes four per character), and docs loaded from the index file share its buffer, so
    loading copies and decodes nothing. UTF-8 is self-synchronising: a needle only matches
    whole characters.
    """

    key: StatKey
    source: str | None
    roles: str  # one letter per message (s, u, a), to label a snippet
    blob: bytes  # holds text and lower; may be shared with other docs
    text_start: int
    text_end: int
    lower_start: int  # lower == text's bytes in the same place when nothing changes case
    lower_end: int
    title_end: int  # where the title ends in the lower text (an absolute offset in blob)

    @property
    def text(self) -> str:
        return self.blob[self.text_start : self.text_end].decode("utf-8", "surrogatepass")

    @property
    def lower(self) -> str:
        return self.blob[self.lower_start : self.lower_end].decode("utf-8", "surrogatepass")

    def raw_text(self) -> bytes:
        return self.blob[self.text_start : self.text_end]

    def raw_lower(self) -> bytes | None:
        """The lowercase bytes if they differ from the text's, else None (they are stored once)."""
        same = self.lower_start == self.text_start and self.lower_end == self.text_end
        return None if same else self.blob[self.lower_start : self.lower_end]


def make_doc(
    key: StatKey, source: str | None, roles: str, blob: bytes, at: int, text_len: int, lower_len: int | None
) -> Doc:
    """A doc over blob[at:]: the text, then its lowercase form unless lower_len is None (same bytes)."""
    text_end = at + text_len
    lower_start, lower_end = (at, text_end) if lower_len is None else (text_end, text_end + lower_len)
    title_end = blob.find(SEPARATOR_BYTES, lower_start, lower_end)
    return Doc(
        key,
        source,
        roles,
        blob,
        at,
        text_end,
        lower_start,
        lower_end,
        lower_end if title_end == -1 else title_end,
    )


def utf8(text: str) -> bytes:
    """UTF-8 that also carries lone surrogates a hand-edited file may hold."""
    return text.encode("utf-8", "surrogatepass")


def doc_from(conversation: Conversation, key: StatKey) -> Doc:
    """The searchable form of a conversation; separators inside text become spaces."""
    parts = [conversation.title, *(str(m.get("content", "")) for m in conversation.messages)]
    text = SEPARATOR.join(part.replace(SEPARATOR, " ") for part in parts)
    text_bytes, lower_bytes = utf8(text), utf8(fold(text))
    roles = "".join(_ROLE_LETTERS.get(m.get("role"), "?") for m in conversation.messages)
    source = source_key(conversation)
    if lower_bytes == text_bytes:
        return make_doc(key, source, roles, text_bytes, 0, len(text_bytes), None)
    return make_doc(key, source, roles, text_bytes + lower_bytes, 0, len(text_bytes), len(lower_bytes))


@dataclass
class TextStats:
    """What the last refresh did, so tests and the benchmark can see the cache working."""

    parsed: int = 0
    index_loaded: bool = False
    index_saved: bool = False


class TextCache:
    """The docs of one folder, shared by every session of this process (sessions are threads)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.stats = TextStats()
        self._docs: dict[str, Doc] = {}
        self._loaded = False
        self._file = IndexFile(root / INDEX_NAME, _MAX_INDEX_BYTES)

    def docs(self, wanted: dict[str, StatKey], read: Reader) -> dict[str, Doc]:
        """A doc for every wanted file name whose file is still readable; parses only changed ones."""
        with self.lock:
            stats = TextStats()
            if not self._loaded:
                loaded = self._file.load(decode_index)  # None: no usable file, so start empty
                stats.index_loaded = loaded is not None
                self._docs = loaded or {}
                self._loaded = True
            found = {}
            for name, key in wanted.items():
                doc = self._docs.get(name)
                if doc is None or doc.key != key:
                    doc = self._parse(name, read)
                    stats.parsed += doc is not None
                if doc is not None:
                    found[name] = doc
            removed = self._docs.keys() - found.keys()
            self._docs = found
            stats.index_saved = self._file.save_if_due(
                stats.parsed + len(removed), lambda: encode_index(found), SAVE_AFTER_CHANGES, SAVE_INTERVAL
            )  # after a big rebuild at once, otherwise now and then; never on every search
            self.stats = stats
            return dict(found)

    def _parse(self, name: str, read: Reader) -> Doc | None:
        try:
            conversation, key = read(name)
        except (FileNotFoundError, Unreadable):
            return None  # deleted or broken since the listing; the listing will report it
        return doc_from(conversation, key)


def encode_index(docs: dict[str, Doc]) -> bytes:
    """Magic line, a JSON header line, then each doc's text and (if different) lowercase bytes."""
    entries, chunks = [], []
    for name, doc in docs.items():
        text, lower = doc.raw_text(), doc.raw_lower()
        entries.append(
            [name, *doc.key, doc.source, doc.roles, len(text), None if lower is None else len(lower)]
        )
        chunks.append(text)
        if lower is not None:
            chunks.append(lower)
    head = json.dumps({"entries": entries}, separators=(",", ":")).encode("ascii")
    return b"".join([INDEX_MAGIC, head, b"\n", *chunks])


def decode_index(raw: bytes) -> dict[str, Doc]:
    """Docs over the file's own bytes (nothing decoded or copied); ValueError/TypeError if malformed."""
    if not raw.startswith(INDEX_MAGIC):
        raise ValueError("not a search index of this version")
    end = raw.index(b"\n", len(INDEX_MAGIC))
    entries = json.loads(raw[len(INDEX_MAGIC) : end])["entries"]
    docs: dict[str, Doc] = {}
    at = end + 1
    for name, mtime, size, inode, source, roles, text_len, lower_len in entries:
        if type(mtime) is not int or type(size) is not int or type(inode) is not int:
            raise TypeError("index entry")
        if (
            type(text_len) is not int
            or text_len < 0
            or not (lower_len is None or (type(lower_len) is int and lower_len >= 0))
        ):
            raise TypeError("index entry")
        if not (type(name) is str and type(roles) is str and (source is None or type(source) is str)):
            raise TypeError("index entry")
        docs[name] = make_doc((mtime, size, inode), source, roles, raw, at, text_len, lower_len)
        at += text_len + (lower_len or 0)
    if at != len(raw):
        raise ValueError("index length")
    return docs


_texts: PerFolder[TextCache] = PerFolder(lambda root: TextCache(root))
text_cache_for = _texts.get
forget_all = _texts.clear
