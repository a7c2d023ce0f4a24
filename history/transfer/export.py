"""Exports a person can keep or move: one conversation as JSON or Markdown, or every one as a zip.

Plain functions without Streamlit; the app passes their bytes to a download button. Nothing here
reads settings, so an API key cannot reach an export.
"""

from __future__ import annotations

import dataclasses
import io
import re
import unicodedata
import zipfile
from datetime import UTC, datetime

from history.models import Conversation, InvalidConversation, moment_of
from history.stores.base import ConversationNotFound, HistoryStore
from history.stores.json_store import encode

README_NAME = "README.txt"
_BATCH = 500  # conversations read at once
_SLUG_LENGTH = 50
_SECRET_KEY = re.compile(r"api[_-]?key|secret|password|authorization", re.IGNORECASE)
_LINE_ENDS = "\r\n"
_ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System prompt"}
_PARTIAL_NOTES = {
    "interrupted": "⚠️ Reply interrupted: the connection to the model ended before it finished.",
    "stopped": "⏹️ Reply stopped by the user before it finished.",
    "length": "✂️ Reply cut off at the length limit.",
}


def _without_secrets(conversation: Conversation) -> Conversation:
    """A copy whose top-level extras hold nothing named like a credential (defence in depth)."""
    extra = {k: v for k, v in conversation.extra.items() if not _SECRET_KEY.search(k)}
    return conversation if extra == conversation.extra else dataclasses.replace(conversation, extra=extra)


def conversation_json(conversation: Conversation) -> bytes:
    """The history file itself (same bytes the store writes), so it imports back unchanged."""
    return encode(_without_secrets(conversation))


def _when(stamp: str) -> str:
    """A schema time as 'YYYY-MM-DD HH:MM UTC'; anything unparsable is shown as written."""
    moment = moment_of(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else str(stamp)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _metadata_line(conversation: Conversation) -> str:
    parts = [f"Created {_one_line(_when(conversation.created_at))}",
             f"updated {_one_line(_when(conversation.updated_at))}"]
    if conversation.model:
        parts.append(f"model {_code_span(conversation.model)}")
    count = len(conversation.messages)
    parts.append(f"{count} message{'s' if count != 1 else ''}")
    return "*" + " · ".join(parts) + "*"


def _fenced(text: str) -> str:
    """Text as a fenced block, shown exactly as written: nothing in it can end the block (its fence is
    longer than any run of backticks in it), so a message can never pass a line off as a speaker's header."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _code_span(text: str) -> str:
    """One line of text as inline code that its own backticks cannot close."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def _partial_note(message: dict) -> str | None:
    """The marker for a reply that did not end normally, as the chat shows it."""
    if message.get("role") != "assistant":
        return None
    return _PARTIAL_NOTES.get(message.get("status") or message.get("finish_reason"))


def _message_markdown(message: dict) -> str:
    """The speaker's header line (each part on one line), then the content fenced, exactly as written."""
    role = message.get("role", "")
    heading = f"**{_one_line(_ROLE_NAMES.get(role, str(role).title()))}**"
    details = [_one_line(_when(message["created_at"]))] if message.get("created_at") else []
    if role == "assistant" and message.get("model"):
        details.append(_code_span(str(message["model"])))
    if details:
        heading += " · " + " · ".join(details)
    content = str(message.get("content", ""))
    body = f"{heading}\n\n{_fenced(content.strip(_LINE_ENDS))}"
    note = _partial_note(message)
    return f"{body}\n\n*{note}*" if note else body


def conversation_markdown(conversation: Conversation) -> str:
    """A transcript to read or paste anywhere: title, times, then each message under its role, its text
    in a fenced block so that no message can make the transcript show a speaker who did not say it."""
    header = f"# {_one_line(conversation.title) or 'Conversation'}\n\n{_metadata_line(conversation)}"
    body = "\n\n---\n\n".join(_message_markdown(m) for m in conversation.messages)
    return f"{header}\n\n---\n\n{body}\n" if body else f"{header}\n"


def _slug(title: str) -> str:
    """Lowercase ASCII words joined by '-': safe on every file system and in a URL."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > _SLUG_LENGTH:
        slug = slug[:_SLUG_LENGTH].rsplit("-", 1)[0] or slug[:_SLUG_LENGTH]
    return slug or "conversation"


def _date(stamp: str) -> str:
    return (moment_of(stamp) or datetime.now(UTC)).strftime("%Y-%m-%d")


def export_filename(conversation: Conversation, ext: str) -> str:
    """'<title-slug>-<YYYY-MM-DD>.<ext>', dated by the last message so versions sort."""
    stamp = conversation.updated_at or conversation.created_at
    return f"{_slug(conversation.title)}-{_date(stamp)}.{ext.lstrip('.')}"


def all_conversations_filename() -> str:
    """The zip's name, dated today, so repeated exports do not overwrite each other."""
    return f"chat-history-{datetime.now(UTC).strftime('%Y-%m-%d')}.zip"


def _readme(exported: int, skipped: list[tuple[str, str]]) -> str:
    lines = [
        f"Chat history export, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"{exported} conversation{'s' if exported != 1 else ''}, one <id>.json file each, in the",
        "app's history format (schema version 1). Import this zip in the app to restore them, or",
        "copy the files into the history folder.",
    ]
    if skipped:
        lines += ["", "These files could not be read and are not included:"]
        lines += [f"- {name}: {reason}" for name, reason in skipped]
    return "\n".join(lines) + "\n"


def all_conversations_zip(store: HistoryStore) -> bytes:
    """Every readable conversation as <id>.json plus a README naming any file left out."""
    skipped = [(problem.name, problem.reason) for problem in store.unreadable()]
    buffer = io.BytesIO()
    exported = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        summaries = store.list()
        for start in range(0, len(summaries), _BATCH):
            batch = [summary.id for summary in summaries[start : start + _BATCH]]
            found = store.get_many(batch)  # in bulk where the store can
            for conversation_id in batch:
                try:  # get() says why one is missing: deleted since the listing, or unreadable
                    conversation = found.get(conversation_id) or store.get(conversation_id)
                except ConversationNotFound:
                    continue
                except InvalidConversation as error:
                    skipped.append((f"{conversation_id}.json", str(error)))
                    continue
                archive.writestr(f"{conversation.id}.json", conversation_json(conversation))
                exported += 1
        archive.writestr(README_NAME, _readme(exported, skipped))
    return buffer.getvalue()
