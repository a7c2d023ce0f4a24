"""Converting decoded files into conversations: this app's schema, Flask lists, OpenAI messages.

Every converter validates what it reads and adds conversations not yet saved to a Parsed (up to its
limits), returning the format's name, or raises ImportFailed, so a bad file saves nothing. ChatGPT
exports are in history.transfer.chatgpt_import.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from history.errors import ConversationTooLarge
from history.models import (
    DEFAULT_TITLE,
    MAX_TITLE_LENGTH,
    ROLES,
    Conversation,
    InvalidConversation,
    is_valid_id,
    new_id,
    title_from,
    utc_now,
)
from history.stores.json_store import MAX_FILE_BYTES, encode
from history.stores.legacy import parse_flask_history
from history.transfer.import_limits import ImportLimits

FORMAT_SCHEMA = "history file"
FORMAT_FLASK = "Flask app history"
FORMAT_OPENAI = "OpenAI messages list"
FORMAT_CHATGPT = "ChatGPT export"
ACCEPTED = (
    "Accepted files: a conversation (.json) or the .zip of all conversations exported from this app; "
    "ChatGPT's conversations.json or its whole data-export .zip; an OpenAI messages list "
    '([{"role": …, "content": …}] or {"messages": […]}); or the earlier Flask app\'s '
    "conversation_history.json."
)
_TOOL_ROLES = ("tool", "function")
_TEXT_PART_TYPES = ("text", "input_text", "output_text")
NO_MESSAGES = "has no messages to import"
TOO_LARGE = f"is larger than {MAX_FILE_BYTES // 2**20} MB, the most one conversation file can hold"
NOT_JSON = "holds a number JSON cannot store (NaN or infinity)"
NESTED = "nests its data too deeply to be saved"


class ImportFailed(ValueError):
    """A file that cannot be imported at all; nothing from it was saved."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"'{name}' {problem}. Nothing was imported. {ACCEPTED}")
        self.name = name
        self.problem = problem  # a predicate, e.g. "is not valid JSON (…)", for skip lists


@dataclass
class Candidate:
    """A converted conversation waiting to be saved, with what was left out of it."""

    conversation: Conversation
    keep_id: bool = False  # schema files keep their id; other formats get a new one
    source: str | None = None  # 'app:id' recorded in extra, to recognise a re-import
    left_out: Counter[str] = field(default_factory=Counter)  # messages not imported, by why: tool, non_text
    title_cut: bool = False  # its title was longer than MAX_TITLE_LENGTH


@dataclass
class Parsed:
    """Everything one file holds, validated, before anything is written; at most `limits` of it.

    `known` says why a candidate is already in the history or earlier in the file (None if new):
    those are skipped without counting against the conversation limit, so importing the same
    file again brings in the next ones.
    """

    known: Callable[[Candidate], str | None]
    limits: ImportLimits
    format: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False  # the conversation limit was reached with more of the file left unread
    titles_cut: int = 0

    @property
    def full(self) -> bool:
        return len(self.candidates) >= self.limits.max_conversations

    def until_full(self, items: Iterable[object]) -> Iterator[tuple[int, object]]:
        """Numbered items until the conversation limit is reached; notes when some were left unread."""
        for index, item in enumerate(items):
            if self.full:
                self.stopped = True
                return
            yield index, item

    def offer(self, candidate: Candidate, label: str | None = None) -> None:
        """Keep a conversation, or note why it is not imported (empty, over a limit, already here)."""
        conversation = candidate.conversation
        label = label or conversation.title
        reason = self._problem(conversation) or self.known(candidate)
        if reason:
            self.skipped.append((label, reason))
            return
        self.candidates.append(candidate)
        self.titles_cut += candidate.title_cut

    def _problem(self, conversation: Conversation) -> str | None:
        if not conversation.messages:
            return NO_MESSAGES
        reason = self.limits.too_many_messages(len(conversation.messages))
        reason = reason or self.limits.too_long(max(map(len, _texts(conversation.messages))))
        if reason:
            return reason
        try:
            encode(conversation)
        except ConversationTooLarge:
            return TOO_LARGE
        except InvalidConversation:  # a number JSON cannot store (NaN), which Python's parser accepts
            return NOT_JSON
        except RecursionError:
            return NESTED
        return None


def _texts(messages: list[dict]) -> Iterator[str]:
    """The text of every message and of each earlier version and kept reply (already validated)."""
    pending = list(messages)
    while pending:
        message = pending.pop()
        yield message["content"]
        pending.extend(message.get("alternatives") or ())
        pending.extend(message.get("replies") or ())


def content_hash(messages: list[dict]) -> str:
    """A short fingerprint of roles and texts: identifies a re-import of a file without ids."""
    canonical = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def with_source(conversation: Conversation, app: str, ident: str | None) -> str:
    """Record where an import came from in extra['source']; returns its 'app:id' key."""
    if ident is None:
        ident = content_hash(conversation.messages)
        conversation.extra["source"] = {"app": app, "sha256": ident}
    else:
        conversation.extra["source"] = {"app": app, "id": ident}
    return f"{app}:{ident}"


def schema_conversations(name: str, items: Iterable[dict], parsed: Parsed, in_list: bool = True) -> str:
    """This app's own files: validated by the same rules the store reads them with."""
    for index, item in parsed.until_full(items):
        data = dict(item)
        keep = is_valid_id(data.get("id"))
        if not keep:
            data["id"] = new_id()
        try:
            conversation = Conversation.from_dict(data)
        except InvalidConversation as error:
            where = f"conversation {index + 1}: " if in_list else ""
            raise ImportFailed(name, f"does not fit the history format ({where}{error})") from None
        long_title = isinstance(item.get("title"), str) and len(item["title"]) > MAX_TITLE_LENGTH
        parsed.offer(Candidate(conversation, keep_id=keep, title_cut=long_title))
    return FORMAT_SCHEMA


def _messages_conversation(messages: list[dict], model: str = "") -> Conversation:
    """One conversation from a bare message list, titled by its first user message."""
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    title = title_from(first_user) if first_user else DEFAULT_TITLE
    first = messages[0]["created_at"] if messages else utc_now()
    last = messages[-1]["created_at"] if messages else first
    return Conversation(
        id=new_id(), title=title, created_at=first, updated_at=last, model=model, messages=messages
    )


def flask_conversation(name: str, items: list, parsed: Parsed) -> str:
    """The Flask MVP's list: it has no times, so every message gets the time of the import."""
    try:
        messages = parse_flask_history(items)
    except InvalidConversation as error:
        raise ImportFailed(name, f"does not fit the Flask app's format ({error})") from None
    stamp = utc_now()
    for message in messages:
        if not isinstance(message.get("created_at"), str):
            message["created_at"] = stamp
    conversation = _messages_conversation(messages)
    source = with_source(conversation, "flask", None) if messages else None
    parsed.offer(Candidate(conversation, source=source), label=None if messages else name)
    return FORMAT_FLASK


def _is_text_part(part: object) -> bool:
    """An OpenAI text part ({"type": "text", "text": …}, or the Responses API's input/output_text)."""
    if not isinstance(part, dict):
        return False
    return part.get("type") in _TEXT_PART_TYPES and isinstance(part.get("text"), str)


def flatten_content(content: object, where: str, name: str) -> tuple[str, bool]:
    """Text of an OpenAI content value (string or list of parts); also whether non-text was dropped."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        kind = type(content).__name__
        raise ImportFailed(name, f"has {where} whose 'content' is {kind}, not text or a list of parts")
    texts, dropped = [], False
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif _is_text_part(part):
            texts.append(part["text"])
        elif isinstance(part, dict):
            dropped = True  # an image, audio or file part
        else:
            raise ImportFailed(name, f"has {where} with a content part that is not an object")
    return "\n\n".join(t for t in texts if t.strip()), dropped


def _openai_message(item: object, index: int, name: str, stamp: str) -> tuple[dict | None, str]:
    """One message, or None and why it was left out ('tool' or 'non_text' or '')."""
    where = f"message {index + 1}"
    if not isinstance(item, dict):
        raise ImportFailed(name, f"has {where} that is not an object")
    role = item.get("role")
    if role in _TOOL_ROLES:
        return None, "tool"
    role = "system" if role == "developer" else role
    if role not in ROLES:
        raise ImportFailed(name, f"has {where} with role {role!r} (expected system, user, assistant or tool)")
    text, dropped = flatten_content(item.get("content"), where, name)
    if not text.strip():
        calls = role == "assistant" and (item.get("tool_calls") or item.get("function_call"))
        return None, "tool" if calls else "non_text" if dropped else ""
    message = {"role": role, "content": text, "created_at": stamp}
    if isinstance(item.get("name"), str):
        message["name"] = item["name"]
    return message, ""


def openai_conversation(name: str, value: list | dict, parsed: Parsed) -> str:
    """A chat request's messages: tool calls and results are dropped, text parts joined."""
    items = value["messages"] if isinstance(value, dict) else value
    too_many = parsed.limits.too_many_messages(len(items))
    if too_many:  # before converting any: a list of a million messages costs nothing more
        parsed.skipped.append((name, too_many))
        return FORMAT_OPENAI
    model = value.get("model") if isinstance(value, dict) else ""
    stamp = utc_now()
    messages, left_out = [], Counter()
    for index, item in enumerate(items):
        message, why = _openai_message(item, index, name, stamp)
        if message is None:
            left_out[why] += 1
        else:
            messages.append(message)
    conversation = _messages_conversation(messages, model if isinstance(model, str) else "")
    source = with_source(conversation, "openai", None) if messages else None
    parsed.offer(Candidate(conversation, source=source, left_out=left_out), label=None if messages else name)
    return FORMAT_OPENAI
