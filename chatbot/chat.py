"""One chat turn, without Streamlit: save the user's message, stream the reply, save the reply."""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.errors import ChatError
from chatbot.prompt import build_messages
from chatbot.providers.base import FINISH_INTERRUPTED, FINISH_STOPPED, ChatRequest, Provider, Reply
from history.models import Conversation, InvalidConversation, make_message
from history.store import ConversationNotFound, HistoryStore

# What the chat shows under a reply that did not finish, by its saved status.
STATUS_NOTES = {
    FINISH_INTERRUPTED: (
        ":material/warning: Reply interrupted: the connection to the model ended before it finished."
    ),
    FINISH_STOPPED: ":material/stop_circle: Reply stopped.",
    "length": ":material/content_cut: Reply cut off at the length limit.",
}


def status_note(message: dict) -> str | None:
    """The note to show under a saved assistant message, if it did not end normally."""
    if message.get("role") != "assistant":
        return None
    return STATUS_NOTES.get(message.get("status") or message.get("finish_reason"))


def visible_messages(messages: list[dict], limit: int) -> tuple[int, list[dict]]:
    """The newest `limit` chat messages and how many earlier ones are hidden: long chats rerun fast."""
    shown = [m for m in messages if m["role"] != "system"]
    hidden = max(len(shown) - limit, 0)
    return hidden, shown[hidden:]


def awaiting_reply(conversation: Conversation) -> bool:
    """True when the last saved message is the user's: a reply failed or never came."""
    return bool(conversation.messages) and conversation.messages[-1]["role"] == "user"


@dataclass
class ChatService:
    """The chat's business logic over a store and a provider, both passed in."""

    store: HistoryStore
    provider: Provider
    model: str
    system_prompt: str | None = None
    max_message_chars: int = 20_000
    reply_tokens: int | None = None

    def new_conversation(self) -> Conversation:
        """An empty conversation; it is saved with its first message."""
        return Conversation(model=self.model)

    def restore_latest(self) -> Conversation:
        """The most recently updated readable conversation, or a new one."""
        for summary in self.store.list():
            try:
                return self.store.get(summary.id)
            except (ConversationNotFound, InvalidConversation):
                continue
        return self.new_conversation()

    def open(self, conversation_id: str) -> Conversation:
        return self.store.get(conversation_id)

    def add_user_message(self, conversation: Conversation, text: str) -> Conversation:
        """Save the user's message at once, before anything can fail."""
        if len(text) > self.max_message_chars:
            raise ChatError("too_long", limit=self.max_message_chars, length=len(text))
        return self._save(conversation, make_message("user", text))

    def request_reply(self, conversation: Conversation) -> Reply:
        """Start the model's reply to the saved conversation; nothing is sent until iterated."""
        reply_room = self.reply_tokens or getattr(self.provider, "reply_tokens", 0)
        messages = build_messages(
            conversation.messages,
            self._system_prompt(conversation),
            context_tokens=self.provider.context_tokens,
            reply_tokens=reply_room,
            count_tokens=self.provider.count_tokens,
        )
        request = ChatRequest(
            messages=messages,
            model=conversation.model or self.model,
            max_tokens=self.reply_tokens,
        )
        return self.provider.execute(request)

    @property
    def must_wait(self) -> bool:
        """True when a reply would first wait for another session's (the local model takes turns)."""
        return bool(getattr(self.provider, "busy", False))

    def save_reply(self, conversation: Conversation, reply: Reply) -> Conversation:
        """Save whatever text arrived, marked with how the reply ended."""
        if not reply.text:
            return conversation
        details: dict = {
            "model": reply.model or conversation.model or self.model,
            "finish_reason": reply.finish_reason,
        }
        if reply.finish_reason in (FINISH_INTERRUPTED, FINISH_STOPPED):
            details["status"] = reply.finish_reason
        if reply.usage:
            details["usage"] = reply.usage
        if reply.latency_ms is not None:
            details["latency_ms"] = reply.latency_ms
            details["first_token_ms"] = reply.first_token_ms
        return self._save(conversation, make_message("assistant", reply.text, **details))

    def _system_prompt(self, conversation: Conversation) -> str | None:
        """A conversation's own system message wins over the configured default."""
        own = [m["content"] for m in conversation.messages if m["role"] == "system"]
        return own[0] if own else self.system_prompt

    def _save(self, conversation: Conversation, message: dict) -> Conversation:
        if self.store.exists(conversation.id):
            return self.store.append(conversation.id, message)
        conversation.add(message)
        if not conversation.model:
            conversation.model = self.model
        return self.store.create(conversation)
