"""ChatGPT's data export (conversations.json): a tree of messages per conversation, one branch shown.

Each conversation's `mapping` holds every node (edits and regenerations make branches);
`current_node` is the leaf the user last saw. We import exactly that branch, as ChatGPT shows it:
no hidden, tool, empty or non-text messages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from history.models import (
    MAX_TITLE_LENGTH,
    Conversation,
    moment_of,
    new_id,
    shown_title,
    shown_value,
    stamp_of,
    utc_now,
)
from history.transfer.import_formats import FORMAT_CHATGPT, Candidate, ImportFailed, Parsed, with_source

TEXT_TYPES = ("text", "multimodal_text")
UNTITLED = "Untitled"


def iso_time(value: object) -> str | None:
    """A unix time in seconds as a schema timestamp; None for anything that is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return stamp_of(moment)


def _leaf(mapping: dict) -> str | None:
    """Without a current_node, the last node that has no children (ChatGPT lists newest last)."""
    leaves = [key for key, node in mapping.items() if isinstance(node, dict) and not node.get("children")]
    return leaves[-1] if leaves else None


def branch(item: dict, name: str, where: str) -> list[dict]:
    """The nodes from the root down to current_node, following parent links; checks the tree."""
    mapping = item["mapping"]
    current = item.get("current_node")
    if current is None:
        current = _leaf(mapping)
    elif not isinstance(current, str):
        raise ImportFailed(name, f"has {where} with a 'current_node' that is not a node id")
    elif current not in mapping:
        shown = shown_value(current)
        raise ImportFailed(name, f"has {where} whose current_node {shown} is not in its mapping")
    nodes: list[dict] = []
    seen: set[str] = set()
    while current is not None:
        node = mapping.get(current)
        shown = shown_value(current)
        if not isinstance(node, dict):
            raise ImportFailed(name, f"has {where} whose node {shown} is missing or not an object")
        if not (node.get("message") is None or isinstance(node["message"], dict)):
            raise ImportFailed(name, f"has {where} whose node {shown} has a non-object 'message'")
        if not isinstance(node.get("children", []), list | None):
            raise ImportFailed(name, f"has {where} whose node {shown} has 'children' that is not a list")
        seen.add(current)
        nodes.append(node)
        current = node.get("parent")
        if not isinstance(current, str | None):
            raise ImportFailed(name, f"has {where} whose node {shown} has a 'parent' that is not a node id")
        if current in seen:
            raise ImportFailed(name, f"has {where} whose mapping loops back on itself")
    nodes.reverse()
    return nodes


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(content: dict) -> tuple[str, bool]:
    """Text parts joined; whether the content had anything else (an image, a file)."""
    parts = content.get("parts")
    parts = parts if isinstance(parts, list) else []
    texts = [part for part in parts if isinstance(part, str) and part.strip()]
    return "\n\n".join(texts), any(not isinstance(part, str) for part in parts)


def convert_message(message: dict, fallback_time: str) -> tuple[dict | None, str]:
    """One visible message, or None and why: 'tool', 'non_text', or '' for nothing visible."""
    metadata = _dict(message.get("metadata"))
    if metadata.get("is_visually_hidden_from_conversation"):
        return None, ""
    role = _dict(message.get("author")).get("role")
    if role == "tool":
        return None, "tool"
    content = _dict(message.get("content"))
    if content.get("content_type") not in TEXT_TYPES or role not in ("system", "user", "assistant"):
        return None, "" if role == "system" else "non_text"
    text, other_parts = _text(content)
    if not text:
        return None, "non_text" if other_parts else ""
    stamp = iso_time(message.get("create_time")) or fallback_time
    converted = {"role": role, "content": text, "created_at": stamp}
    if role == "assistant" and isinstance(metadata.get("model_slug"), str):
        converted["model"] = metadata["model_slug"]
    return converted, ""


def convert_conversation(item: object, name: str, index: int) -> Candidate:
    """One ChatGPT conversation as a Candidate; raises ImportFailed if its structure is broken."""
    where = f"conversation {index + 1}"
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise ImportFailed(name, f"has {where} without a 'mapping' of messages")
    title = item.get("title") if isinstance(item.get("title"), str) and item["title"].strip() else UNTITLED
    line = " ".join(title[: MAX_TITLE_LENGTH * 4].split())  # one line, spaces collapsed, as ChatGPT shows it
    long_title, title = len(line) > MAX_TITLE_LENGTH, shown_title(line)
    created = iso_time(item.get("create_time")) or iso_time(item.get("update_time")) or utc_now()
    messages, left_out = [], Counter()
    for node in branch(item, name, f"{where} ('{title}')"):
        if node.get("message") is None:
            continue
        message, why = convert_message(node["message"], messages[-1]["created_at"] if messages else created)
        if message is None:
            left_out[why] += 1
        else:
            messages.append(message)
    models = [m["model"] for m in messages if "model" in m]
    model = item.get("default_model_slug") if isinstance(item.get("default_model_slug"), str) else ""
    conversation = Conversation(
        id=new_id(moment_of(created)),  # dated when it began, so ids sort like the originals
        title=title,
        created_at=created,
        updated_at=messages[-1]["created_at"] if messages else created,
        model=model or (models[-1] if models else ""),
        messages=messages,
    )
    ident = item.get("id") or item.get("conversation_id")
    source = with_source(conversation, "chatgpt", ident if isinstance(ident, str) else None)
    return Candidate(conversation, source=source, left_out=left_out, title_cut=long_title)


def chatgpt_conversations(name: str, items: Iterable[object], parsed: Parsed) -> str:
    """The export's conversations up to the limit, all validated before any is saved."""
    for index, item in parsed.until_full(items):
        parsed.offer(convert_conversation(item, name, index))
    return FORMAT_CHATGPT
