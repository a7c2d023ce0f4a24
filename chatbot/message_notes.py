"""What the chat shows of saved messages: which ones, and the notes and details under a reply."""

from __future__ import annotations

from datetime import UTC, datetime

from chatbot.providers.base import FINISH_INTERRUPTED, FINISH_STOPPED

SOURCE_SCRIPTED = "scripted"  # answered from the bot profile, without the model
SOURCE_FALLBACK = "fallback"  # the profile's reply for when the model could not answer
STATUS_STREAMING = "streaming"  # a partial reply saved while it is still being generated
STALE_SECONDS = 10.0  # a streaming reply not saved again for this long was cut off by its server

# What the chat shows under a reply that did not finish, by its saved status.
STATUS_NOTES = {
    FINISH_INTERRUPTED: (
        ":material/warning: Reply interrupted: the connection to the model ended before it finished."
    ),
    FINISH_STOPPED: ":material/stop_circle: Reply stopped.",
    STATUS_STREAMING: ":material/more_horiz: Reply still arriving in another window…",
    "length": ":material/content_cut: Reply cut off at the length limit.",
    SOURCE_SCRIPTED: ":material/bolt: Scripted answer from the bot profile.",
    SOURCE_FALLBACK: ":material/support: The model could not answer; this is the profile's fallback reply.",
}


# Why an interrupted reply stopped, by the error kind saved with it.
INTERRUPTED_BECAUSE = {
    "timeout": "the model server stopped sending before it finished (timed out)",
    "restart": "the app's server stopped before the reply finished",
    "unexpected": "something went wrong while it was arriving",
}


def status_note(message: dict, now: datetime | None = None) -> str | None:
    """The note to show under a saved assistant message, if it did not end normally."""
    if message.get("role") != "assistant":
        return None
    if is_stale_reply(message, now):
        return f":material/warning: Reply interrupted: {INTERRUPTED_BECAUSE['restart']}."
    status = message.get("source") or message.get("status") or message.get("finish_reason")
    reason = INTERRUPTED_BECAUSE.get(message.get("error"))
    if status == FINISH_INTERRUPTED and reason:
        return f":material/warning: Reply interrupted: {reason}."
    if status == FINISH_INTERRUPTED and message.get("error_detail"):
        return f":material/warning: Reply interrupted: {message['error_detail']}"
    return STATUS_NOTES.get(status)


def is_streaming(message: dict) -> bool:
    """A partial reply saved while it was being generated (here, elsewhere, or by a server that died)."""
    return message.get("role") == "assistant" and message.get("status") == STATUS_STREAMING


def is_stale_reply(message: dict, now: datetime | None = None) -> bool:
    """A streaming reply nobody has saved again for a while: its server stopped mid-reply."""
    if not is_streaming(message):
        return False
    try:
        saved = datetime.fromisoformat(str(message.get("checkpoint_at")).replace("Z", "+00:00"))
    except ValueError:
        return True
    return ((now or datetime.now(UTC)) - saved).total_seconds() > STALE_SECONDS


def visible_messages(messages: list[dict], limit: int) -> tuple[int, list[tuple[int, dict]]]:
    """The newest `limit` chat messages with their indexes, and how many earlier ones are hidden."""
    shown = [(index, m) for index, m in enumerate(messages) if m["role"] != "system"]
    hidden = max(len(shown) - limit, 0)
    return hidden, shown[hidden:]


def reply_details(message: dict) -> str | None:
    """Tokens and time under an assistant message, when the server reported them."""
    if message.get("role") != "assistant":
        return None
    parts = []
    usage = message.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            parts.append(f"{prompt:,} tokens in · {completion:,} out")
        elif isinstance(usage.get("total_tokens"), int):
            parts.append(f"{usage['total_tokens']:,} tokens")
    latency = message.get("latency_ms")
    if isinstance(latency, int | float) and not isinstance(latency, bool):
        parts.append(f"{latency / 1000:.1f} s")
    return " · ".join(parts) or None
