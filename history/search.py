"""What a search means, the same on every store: words in any order, "quoted phrases", prefixes.

Each store runs it in its own engine (the folder's index and SQLite: FTS5; PostgreSQL: tsquery over
a GIN index), ranked by relevance with the newest first among equals. This module turns the query
into terms and into each engine's syntax, and cuts the snippet shown under a hit, so every store
reads the query and shows its hits alike. Plain functions without Streamlit.

A word matches any word that starts with it ("sort" finds "sorted"), as the words a user is still
typing should; a phrase matches those words together, in that order. Letters compare without case.
Words are runs of letters and digits; everything else separates them, as in FTS5's unicode61.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from history.listing import COLUMNS, conversations_table
from history.models import ConversationSummary

SEARCH_COLUMNS = [*COLUMNS, "snippet"]
SNIPPET_BEFORE = 60  # characters of context before the first match
SNIPPET_LENGTH = 160  # characters in a snippet at most, before ellipses
MAX_TERMS = 32  # a longer query keeps its first 32 terms: more only slows every engine down
MAX_PHRASE_WORDS = 32  # and a longer phrase its first 32 words (PostgreSQL refuses thousands)
SEPARATOR = "\x1e"  # between messages in a searchable body; a separator for every engine
FTS5_TOKENIZE = "unicode61 remove_diacritics 0"  # FTS5 tables' tokenizer: 'é' is not 'e', as in _WORD
_TERM = re.compile(r'"([^"]*)"|([^"\s]+)')
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as FTS5's unicode61 tokenizer splits
_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Term:
    """One word (matched as a prefix) or one phrase (its words in order, the last one whole)."""

    words: tuple[str, ...]

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1


class SearchHit(NamedTuple):
    """One matching conversation, as the history table shows it."""

    summary: ConversationSummary
    snippet: str  # the first match in a message (or the title), with its role and context

    @property
    def id(self) -> str:
        return self.summary.id


def query_terms(query: str) -> list[Term]:
    """The query's words and "phrases", lowercase, repeats dropped; punctuation only separates.

    A word with punctuation inside ("e-mail", "3.11") is a phrase of its parts, as it was written.
    """
    terms: dict[Term, None] = {}
    for phrase, word in _TERM.findall(query):
        words = tuple(w.lower() for w in _WORD.findall(phrase or word)[:MAX_PHRASE_WORDS])
        if words:
            terms[Term(words)] = None
    return list(terms)[:MAX_TERMS]


def words(text: str) -> list[str]:
    """The words of a text as query_terms reads a query's, lowercase (a PostgreSQL tsvector holds these)."""
    return [word.lower() for word in _WORD.findall(text)]


def fts5_query(terms: Sequence[Term]) -> str:
    """FTS5 MATCH syntax: every term must appear; single words match as prefixes."""
    parts = []
    for term in terms:
        quoted = '"' + " ".join(term.words) + '"'  # words hold only letters and digits: nothing to escape
        parts.append(quoted if term.phrase else quoted + "*")
    return " AND ".join(parts)


def tsquery(terms: Sequence[Term]) -> str:
    """PostgreSQL to_tsquery('simple', …) syntax for the same meaning as fts5_query."""
    parts = []
    for term in terms:
        if term.phrase:
            parts.append("(" + " <-> ".join(term.words) + ")")
        else:
            parts.append(term.words[0] + ":*")
    return " & ".join(parts)


def _pattern(terms: Sequence[Term]) -> re.Pattern[str]:
    """Where a term matches in text, as the engines match it: at the start of a word."""
    alternatives = []
    for term in terms:
        words = [re.escape(word) for word in term.words]
        tail = r"(?![^\W_])" if term.phrase else ""
        alternatives.append(r"(?<![^\W_])" + r"[\W_]+".join(words) + tail)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _cut(text: str, start: int, end: int, match: tuple[int, int]) -> str:
    """text[start:end] on word boundaries (never cutting the match), spaces collapsed, '…' if cut."""
    if start > 0:
        space = text.find(" ", start, match[0])
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", match[1], end)
        end = space if space != -1 else end
    piece = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")


def snippet(title: str, messages: Iterable[tuple[str, str]], terms: Sequence[Term]) -> str:
    """The first match in a message (role, content) with context around it, labelled with the role;
    the title when no message holds a match."""
    if terms:
        pattern = _pattern(terms)
        for role, text in messages:
            found = pattern.search(text)
            if found is None:
                continue
            start = max(0, found.start() - SNIPPET_BEFORE)
            end = min(len(text), max(start + SNIPPET_LENGTH, found.end()))
            label = _ROLE_LABELS.get(role, "Message")
            return f"{label}: {_cut(text, start, end, found.span())}"
    return " ".join(title.split())


def body(messages: Iterable[str]) -> str:
    """The searchable text of a conversation's messages, one after another."""
    return SEPARATOR.join(text.replace(SEPARATOR, " ") for text in messages)


def search_table(hits: Sequence[SearchHit]) -> pd.DataFrame:
    """The history table's columns plus 'snippet', in the hits' (relevance) order."""
    table = conversations_table(hit.summary for hit in hits)
    table["snippet"] = pd.Series([hit.snippet for hit in hits], dtype="str")
    return table[SEARCH_COLUMNS]
