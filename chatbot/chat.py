"""One chat turn, without Streamlit: save the user's message, stream the reply, save the reply."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from chatbot.conversation_settings import ConversationSettings, settings_of
from chatbot.errors import ChatError
from chatbot.message_notes import (
    INTERRUPTED_BECAUSE,
    SOURCE_FALLBACK,
    SOURCE_SCRIPTED,
    STATUS_STREAMING,
    is_stale_reply,
)
from chatbot.profile import Profile
from chatbot.prompt import MESSAGE_OVERHEAD, build_messages
from chatbot.providers.base import FINISH_INTERRUPTED, FINISH_STOPPED, ChatRequest, Provider, Reply
from history.errors import ConversationNotFound, InvalidConversation
from history.models import FEEDBACK, Conversation, clean_title, make_message
from history.stores.base import HistoryStore
from history.stores.json_store import MAX_FILE_BYTES, encode

REPLY_ROOM_BYTES = 2**20  # a message is refused when less than this is left for its reply


def last_user_index(conversation: Conversation) -> int | None:
    """Where the last user message is, the one "Edit" changes."""
    for index in range(len(conversation.messages) - 1, -1, -1):
        if conversation.messages[index]["role"] == "user":
            return index
    return None


def pending_action(conversation: Conversation, requested: str | None) -> str | None:
    """A requested "reply" or "regenerate", if it still fits the conversation (a double click may not)."""
    last = conversation.messages[-1]["role"] if conversation.messages else None
    if (requested, last) in (("reply", "user"), ("regenerate", "assistant")):
        return requested
    return None


def versions_before(message: dict) -> list[dict]:
    """A message's earlier versions plus itself, oldest first: what a new version keeps."""
    earlier = list(message.get("alternatives", []))
    earlier.append({k: v for k, v in message.items() if k != "alternatives"})
    return earlier


@dataclass(frozen=True)
class ContextEstimate:
    """What the chat shows about the context window."""

    tokens: int
    window: int | None
    left_out: int

    def describe(self) -> str:
        text = f"About {self.tokens:,} tokens go with the next message"
        text += f", of a {self.window:,}-token context." if self.window else "."
        if self.left_out:
            text += f" The {self.left_out} oldest messages no longer fit and are left out."
        return text


@dataclass(frozen=True)
class ReplyResult:
    """How a reply ended, as saved: from the provider's Reply, or the text so far when stopped."""

    text: str
    finish_reason: str | None
    usage: dict | None = None
    model: str | None = None
    error: ChatError | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None

    @classmethod
    def of(cls, reply: Reply) -> ReplyResult:
        return cls(reply.text, reply.finish_reason, reply.usage, reply.model, reply.error,
                   reply.latency_ms, reply.first_token_ms)


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
    reply_tokens: int | None = None  # CHATBOT_MAX_REPLY_TOKENS: no reply is longer
    profile: Profile = field(default_factory=Profile)
    allowed_models: tuple[str, ...] = ()  # CHATBOT_ALLOWED_MODELS: empty allows any
    lock_system_prompt: bool = False  # CHATBOT_LOCK_SYSTEM_PROMPT: every conversation gets system_prompt

    def new_conversation(self) -> Conversation:
        """An empty conversation; it is saved with its first message."""
        return Conversation(model=self.model)

    def restore_latest(self) -> Conversation:
        """The most recently updated readable conversation, or a new one."""
        for summary in self.store.page(10):  # a listed one that cannot be opened is rare; ten is plenty
            try:
                return self.store.get(summary.id)
            except (ConversationNotFound, InvalidConversation):
                continue
        return self.new_conversation()

    def open(self, conversation_id: str) -> Conversation:
        return self.store.get(conversation_id)

    def add_user_message(self, conversation: Conversation, text: str) -> Conversation:
        """Save the user's message at once, before anything can fail."""
        self._check_length(text)
        message = make_message("user", text)
        self._check_room(conversation, message)
        return self._save(conversation, message)

    def scripted_reply(self, conversation: Conversation) -> Conversation | None:
        """Answer the last message from the profile's script, saved at once; None if no entry matches."""
        if not awaiting_reply(conversation):
            return None
        answer = self.profile.scripted_answer(conversation.messages[-1]["content"])
        if answer is None:
            return None
        return self._save(conversation, make_message("assistant", answer, source=SOURCE_SCRIPTED))

    def request_reply(self, conversation: Conversation, *, regenerate: bool = False) -> Reply:
        """Start the model's reply to the saved conversation; nothing is sent until iterated.

        With `regenerate`, the last (assistant) message is left out: the reply replaces it.
        """
        history = conversation.messages[:-1] if regenerate else conversation.messages
        request = ChatRequest(
            messages=self._prompt(history, self._system_prompt(conversation)),
            model=self.model_for(conversation),
            temperature=settings_of(conversation).temperature,
            max_tokens=self._reply_cap,
        )
        return self.provider.execute(request)

    def allows(self, model: str) -> bool:
        """The app's own model, and any CHATBOT_ALLOWED_MODELS names (all of them when it is empty)."""
        return not self.allowed_models or model in self.allowed_models or model == self.model

    def model_for(self, conversation: Conversation) -> str:
        """The conversation's own model if this app allows it, else the app's: a file never picks the cost."""
        own = conversation.model
        return own if own and self.allows(own) else self.model

    def refuses_model(self, conversation: Conversation) -> bool:
        """True when the conversation asks for a model this app does not allow (model_for replaces it)."""
        return bool(conversation.model) and not self.allows(conversation.model)

    def own_system_prompt(self, conversation: Conversation) -> str | None:
        """The conversation's own setting, else its imported system message: what a lock ignores."""
        own = settings_of(conversation).system_prompt
        if own:
            return own
        imported = [m["content"] for m in conversation.messages if m["role"] == "system"]
        return imported[0] if imported else None

    def context_estimate(self, conversation: Conversation) -> ContextEstimate:
        """How many tokens the next request would carry, and how many old messages no longer fit."""
        sent = self._prompt(conversation.messages, self._system_prompt(conversation))
        turns = [m for m in conversation.messages if m["role"] != "system" and m["content"]]
        tokens = sum(self.provider.count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in sent)
        left_out = len(turns) - sum(1 for m in sent if m["role"] != "system")
        return ContextEstimate(tokens, self.provider.context_tokens, max(left_out, 0))

    @property
    def must_wait(self) -> bool:
        """True when a reply would first wait for another session's (the local model takes turns)."""
        return self.provider.busy

    def save_reply(
        self, conversation: Conversation, reply: Reply, *, regenerate: bool = False
    ) -> Conversation:
        """Save whatever text arrived, marked with how the reply ended.

        A regenerated reply replaces the last one, which is kept in its `alternatives`.
        """
        message = self.reply_message(conversation, ReplyResult.of(reply))
        if message is None:
            return conversation
        if not regenerate:
            return self._save(conversation, message)
        message["alternatives"] = versions_before(conversation.messages[-1])
        return self._replace_from(conversation, len(conversation.messages) - 1, message)

    def reply_message(self, conversation: Conversation, result: ReplyResult) -> dict | None:
        """The assistant message to save for a finished reply; None when there is nothing to keep."""
        if not result.text:
            if result.error is None or not self.profile.fallback:
                return None
            return make_message(
                "assistant", self.profile.fallback, source=SOURCE_FALLBACK, error=result.error.kind
            )
        details: dict = {
            "model": result.model or self.model_for(conversation),
            "finish_reason": result.finish_reason,
        }
        if result.finish_reason in (FINISH_INTERRUPTED, FINISH_STOPPED):
            details["status"] = result.finish_reason
        if result.error is not None:
            details["error"] = result.error.kind
            if result.error.kind not in INTERRUPTED_BECAUSE:
                details["error_detail"] = result.error.message
        if result.usage:
            details["usage"] = result.usage
        if result.latency_ms is not None:
            details["latency_ms"] = result.latency_ms
            details["first_token_ms"] = result.first_token_ms
        return make_message("assistant", result.text, **details)

    def streaming_message(self, conversation: Conversation, text: str, *, checkpoint_at: str) -> dict:
        """The partial reply as saved while it streams, so other tabs and servers can show it."""
        return make_message(
            "assistant", text, model=self.model_for(conversation),
            status=STATUS_STREAMING, checkpoint_at=checkpoint_at,
        )

    def settle(self, conversation: Conversation, in_flight: bool) -> Conversation:
        """Mark a reply left streaming by a server that stopped (none in flight here) as interrupted."""
        if not conversation.messages or in_flight or not is_stale_reply(conversation.messages[-1]):
            return conversation
        index = len(conversation.messages) - 1
        return self.store.update_message(
            conversation.id, index, conversation.messages[index]["created_at"],
            status=FINISH_INTERRUPTED, finish_reason=FINISH_INTERRUPTED, error="restart", checkpoint_at=None,
        )

    def edit_last_user_message(self, conversation: Conversation, text: str) -> Conversation:
        """Replace the last user message (and the reply to it) with new text, keeping the old ones."""
        self._check_length(text)
        index = last_user_index(conversation)
        if index is None:
            raise ValueError("there is no user message to edit")
        old = conversation.messages[index]
        earlier = {**old, "replies": conversation.messages[index + 1 :]}
        message = make_message("user", text, alternatives=versions_before(earlier))
        return self._replace_from(conversation, index, message)

    def set_feedback(self, conversation: Conversation, index: int, rating: str | None) -> Conversation:
        """Save thumbs up or down (None clears it) in the message itself."""
        if rating not in (*FEEDBACK, None):
            raise ValueError(f"feedback must be one of {FEEDBACK}")
        message = conversation.messages[index]
        return self.store.update_message(
            conversation.id, index, message["created_at"], feedback=rating
        )

    def configure(
        self, conversation: Conversation, model: str, options: ConversationSettings
    ) -> Conversation:
        """Save the conversation's own model, temperature and system prompt with it.

        ValueError for a model this app does not allow; with the system prompt locked, the saved one
        stays as it was (it is ignored, not lost).
        """
        model = model.strip() or self.model
        if not self.allows(model):
            raise ValueError(
                f"The model '{model}' is not one this app allows (CHATBOT_ALLOWED_MODELS): "
                f"pick one of {', '.join(dict.fromkeys((self.model, *self.allowed_models)))}."
            )
        if self.lock_system_prompt:
            options = dataclasses.replace(options, system_prompt=settings_of(conversation).system_prompt)
        fields = {"model": model, "settings": options.to_dict()}
        if self.store.exists(conversation.id):
            return self.store.update(conversation.id, **fields)
        conversation.model = fields["model"]
        conversation.extra["settings"] = fields["settings"]
        return conversation

    def rename(self, conversation_id: str, title: str) -> Conversation:
        return self.store.update(conversation_id, title=clean_title(title))

    def _check_room(self, conversation: Conversation, message: dict) -> None:
        """Refuse a message whose reply could no longer be saved: the conversation is nearly full."""
        trial = dataclasses.replace(conversation, messages=[*conversation.messages, message])
        try:
            size = len(encode(trial))
        except InvalidConversation:
            size = MAX_FILE_BYTES
        if size + REPLY_ROOM_BYTES > MAX_FILE_BYTES:
            raise ChatError("conversation_full", limit=MAX_FILE_BYTES // 2**20)

    def _check_length(self, text: str) -> None:
        if len(text) > self.max_message_chars:
            raise ChatError("too_long", limit=self.max_message_chars, length=len(text))

    def _system_prompt(self, conversation: Conversation) -> str | None:
        """The configured one when locked; else the conversation's own, else the configured one."""
        if self.lock_system_prompt:
            return self.system_prompt
        return self.own_system_prompt(conversation) or self.system_prompt

    @property
    def _reply_cap(self) -> int | None:
        """CHATBOT_MAX_REPLY_TOKENS, or the provider's own shorter length (the local model's)."""
        caps = [cap for cap in (self.reply_tokens, self.provider.reply_tokens) if cap]
        return min(caps) if caps else None

    def _prompt(self, history: list[dict], system_prompt: str | None) -> list[dict]:
        return build_messages(
            history,
            system_prompt,
            context_tokens=self.provider.context_tokens,
            reply_tokens=self._reply_cap or 0,
            count_tokens=self.provider.count_tokens,
        )

    def _replace_from(self, conversation: Conversation, start: int, message: dict) -> Conversation:
        """Replace messages[start:] with one message, unless another tab changed them meanwhile."""
        return self.store.replace_tail(
            conversation.id,
            start,
            message,
            expected_count=len(conversation.messages),
            expected_last=conversation.messages[-1]["created_at"],
        )

    def _save(self, conversation: Conversation, message: dict) -> Conversation:
        if self.store.exists(conversation.id):
            return self.store.append(conversation.id, message)
        if conversation.messages:  # it was saved, so it was deleted meanwhile: never re-create it
            raise ConversationNotFound(conversation.id)
        conversation.add(message)
        if not conversation.model:
            conversation.model = self.model
        return self.store.create(conversation)
