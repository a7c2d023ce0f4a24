"""Full-text search over titles and messages: every word must appear, newest first, with a snippet.

Plain functions without Streamlit. On the JSON folder the text comes from history.search_index,
which parses only files changed since the last search (or since the index file was written); in a
database (history/stores/sql_store.py), only conversations whose revision changed since the last search in
this process are read again. Any other HistoryStore is read whole on every search.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from history.listing import COLUMNS, conversations_table
from history.models import Conversation, ConversationSummary
from history.search_index import SEPARATOR, SEPARATOR_BYTES, Doc, doc_from, fold, text_cache_for, utf8
from history.stores.base import HistoryStore, keeps_revisions, readable_conversations
from history.stores.json_store import JsonHistoryStore, read_file
from history.summary_cache import UNKNOWN_KEY, StatKey, cache_for, stat_key

SEARCH_COLUMNS = [*COLUMNS, "matches", "snippet"]
SNIPPET_BEFORE = 60  # characters of context before the first match
SNIPPET_LENGTH = 160  # characters in a snippet at most, before ellipses
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_ROLE_LABELS = {"s": "System", "u": "User", "a": "Assistant"}
_NO_DOC = Doc(UNKNOWN_KEY, None, "", b"", 0, 0, 0, 0, 0)


class SearchHit(NamedTuple):
    """One matching conversation, as the history table shows it (a tuple: cheap for 10,000 hits)."""

    id: str
    title: str
    updated_at: str
    matches: int  # how often the query's words occur in the messages (or else the title)
    snippet: str  # the first match in a message (or the title), with its role and context


def query_terms(query: str) -> list[str]:
    """Lowercase words, or "quoted phrases" kept whole; repeats dropped so counts stay honest."""
    terms: dict[str, None] = {}  # keeps the order and drops repeats in one pass, however long the query
    for phrase, word in _TERM.findall(query.replace(SEPARATOR, " ")):
        term = fold(" ".join(phrase.split()) if phrase else word)
        if term:
            terms[term] = None
    return list(terms)


def _reader(root: Path):
    def read(name: str) -> tuple[Conversation, StatKey]:
        conversation, _legacy, info = read_file(root / name)
        return conversation, stat_key(info)

    return read


def _documents(store: HistoryStore) -> list[tuple[ConversationSummary, Doc]]:
    """Every listed conversation with its text, newest first, in the listing's order."""
    summaries = store.list()
    if isinstance(store, JsonHistoryStore):
        wanted = cache_for(store.root).listed_keys(summaries)
        docs = text_cache_for(store.root).docs(wanted, _reader(store.root))
        return [(s, docs[name]) for s, name in zip(summaries, wanted, strict=True) if name in docs]
    if keeps_revisions(store):
        return _documents_by_revision(store, summaries)
    return _documents_uncached(store, summaries)


def _documents_uncached(store: HistoryStore, summaries: list[ConversationSummary]):
    """Any other store: read each conversation (correct, not fast)."""
    return [
        (summary, doc_from(conversation, UNKNOWN_KEY))
        for summary, conversation in readable_conversations(store, summaries)
    ]


# A database's docs, per (database, owner): {id: doc}, each doc keyed by (revision, 0, 0).
_revision_docs: dict[object, dict[str, Doc]] = {}
_revision_lock = threading.Lock()


def _documents_by_revision(store, summaries: list[ConversationSummary]):
    """Docs from memory, reading (in bulk) only conversations changed since the last search."""
    revisions = store.revisions()
    with _revision_lock:
        cached = dict(_revision_docs.get(store.cache_key, {}))
    stale = [s.id for s in summaries if (cached.get(s.id) or _NO_DOC).key[0] != revisions.get(s.id)]
    for conversation_id, conversation in store.get_many(stale).items():
        # The revision read before the conversation: a change in between is read again next time.
        cached[conversation_id] = doc_from(conversation, (revisions.get(conversation_id, -1), 0, 0))
    docs = {s.id: cached[s.id] for s in summaries if s.id in cached}
    with _revision_lock:
        _revision_docs[store.cache_key] = docs
    return [(summary, docs[summary.id]) for summary in summaries if summary.id in docs]


def warm_up(store: HistoryStore) -> int:
    """Load the text index and read changed files now (e.g. in a thread at start-up), not on the first search.

    Returns how many conversations are ready to search.
    """
    return len(_documents(store))


def imported_sources(store: HistoryStore) -> set[str]:
    """The 'app:id' of every conversation that came from an import, to skip re-imports."""
    return {doc.source for _, doc in _documents(store) if doc.source}


def _cut(text: str, window: tuple[int, int], segment: tuple[int, int], match: tuple[int, int]) -> str:
    """The window of text on word boundaries (never cutting the match), spaces collapsed, '…' if cut."""
    (start, end), (seg_start, seg_end), (match_start, match_end) = window, segment, match
    if start > seg_start:
        space = text.find(" ", start, match_start)
        start = space + 1 if space != -1 else start
    if end < seg_end:
        space = text.rfind(" ", match_end, end)
        end = space if space != -1 else end
    piece = " ".join(text[start:end].split())
    return ("…" if start > seg_start else "") + piece + ("…" if end < seg_end else "")


def _first_match(haystack, needles, start: int, end: int) -> tuple[int, int] | None:
    """Earliest (position, length) of any needle in haystack[start:end]; str or bytes alike."""
    best = None
    for needle in needles:
        pos = haystack.find(needle, start, end)
        if pos != -1 and (best is None or pos < best[0]):
            best = (pos, len(needle))
    return best


def _aligned(doc: Doc) -> bool:
    """Whether lowercasing kept every character's UTF-8 length, so byte offsets carry over."""
    return doc.text_end - doc.text_start == doc.lower_end - doc.lower_start


def _text_part(doc: Doc, index: int, start: int, end: int) -> str:
    """Original-case text of part `index` (0 = title), found at lower bytes [start, end)."""
    if _aligned(doc):
        delta = doc.text_start - doc.lower_start
        return doc.blob[start + delta : end + delta].decode("utf-8", "surrogatepass")
    return doc.text.split(SEPARATOR)[index]  # rare: a character whose lowercase is longer


def _window(text: str, lower: str, terms: list[str]) -> str:
    """The first match in one message with context around it, as _cut trims it."""
    pos, length = _first_match(lower, terms, 0, len(lower)) or (0, 0)
    start = max(0, pos - SNIPPET_BEFORE)
    end = min(len(text), max(start + SNIPPET_LENGTH, pos + length))
    return _cut(text, (start, end), (0, len(text)), (pos, pos + length))


def snippet(doc: Doc, terms: list[str], needles: list[bytes]) -> str:
    """Context around the first match in a message, labelled with its role; else the title."""
    blob, first, last = doc.blob, doc.lower_start, doc.lower_end
    match = _first_match(blob, needles, doc.title_end, last) if needles else None
    if match is None:
        return " ".join(_text_part(doc, 0, first, doc.title_end).split())
    pos = match[0]
    seg_start = blob.rfind(SEPARATOR_BYTES, first, pos) + 1
    seg_end = blob.find(SEPARATOR_BYTES, pos, last)
    seg_end = last if seg_end == -1 else seg_end
    part = blob.count(SEPARATOR_BYTES, first, pos)
    lower = blob[seg_start:seg_end].decode("utf-8", "surrogatepass")
    role = _ROLE_LABELS.get(doc.roles[part - 1 : part], "Message")
    return f"{role}: {_window(_text_part(doc, part, seg_start, seg_end), lower, terms)}"


def count_matches(doc: Doc, needles: list[bytes]) -> int:
    """How often the needles occur, or -1 if one is missing: the test and the count in one pass.

    Each counts its occurrences in the messages, or in the title if no message has it
    (a title is usually the first message again, which would count twice).
    """
    blob, title_end = doc.blob, doc.title_end
    total = 0
    for needle in needles:
        found = blob.count(needle, title_end, doc.lower_end)
        if not found:
            found = blob.count(needle, doc.lower_start, title_end)
            if not found:
                return -1
        total += found
    return total


# Recent queries' results per conversation, reused while the conversation's Doc is the same object:
# Streamlit reruns the script (and so the search) on every click while the query stays the same.
_Results = dict[str, tuple[Doc, int, str]]
_recent: OrderedDict[tuple[object, tuple[str, ...]], _Results] = OrderedDict()
_recent_lock = threading.Lock()
RECENT_QUERIES = 8


def _hits(store: HistoryStore, query: str, limit: int | None) -> list[tuple[ConversationSummary, SearchHit]]:
    terms = query_terms(query)
    # Stores with a doc cache hand back the same Doc objects while nothing changed; others build new ones.
    remember = isinstance(store, JsonHistoryStore) or keeps_revisions(store)
    key = (getattr(store, "root", None) or getattr(store, "cache_key", None), tuple(terms))
    with _recent_lock:
        previous = _recent.get(key, {}) if remember else {}
    results: _Results = {}
    found = []
    needles = [utf8(term) for term in terms]
    for summary, doc in _documents(store):
        result = previous.get(summary.id)
        if result is None or result[0] is not doc:  # new, or its file changed: evaluate again
            matches = count_matches(doc, needles)
            result = (doc, matches, snippet(doc, terms, needles) if matches >= 0 else "")
        results[summary.id] = result
        if result[1] >= 0:
            found.append(
                (summary, SearchHit(summary.id, summary.title, summary.updated_at, result[1], result[2]))
            )
            if limit is not None and len(found) >= limit:
                break
    if remember:
        _remember(key, results)
    return found


def _remember(key: tuple[object, tuple[str, ...]], results: _Results) -> None:
    with _recent_lock:
        _recent[key] = results
        _recent.move_to_end(key)
        while len(_recent) > RECENT_QUERIES:
            _recent.popitem(last=False)


def forget_recent_queries() -> None:
    """Drop remembered query results and database docs (for benchmarks that time a query as if new)."""
    with _recent_lock:
        _recent.clear()
    with _revision_lock:
        _revision_docs.clear()


def search(store: HistoryStore, query: str, *, limit: int | None = None) -> list[SearchHit]:
    """Conversations whose title and messages hold every word of the query (any case), newest first.

    A blank query matches every conversation (with 0 matches), as an empty AND does.
    """
    return [hit for _, hit in _hits(store, query, limit)]


def search_table(store: HistoryStore, query: str) -> pd.DataFrame:
    """The history table's columns plus 'matches' and 'snippet', for the matching conversations."""
    found = _hits(store, query, None)
    table = conversations_table(summary for summary, _ in found)
    by_id = {hit.id: hit for _, hit in found}
    table["matches"] = pd.Series([by_id[i].matches for i in table["id"]], dtype="int64")
    table["snippet"] = pd.Series([by_id[i].snippet for i in table["id"]], dtype="str")
    return table[SEARCH_COLUMNS]
