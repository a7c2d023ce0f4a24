"""Pick who answers from the settings: an OpenAI-compatible server, or the bundled local model."""

from __future__ import annotations

from chatbot.errors import ChatError
from chatbot.providers.base import Provider
from chatbot.providers.openai_provider import OpenAIProvider
from chatbot.settings import DEFAULT_OPENAI_MODEL, Settings


def create_provider(settings: Settings) -> Provider:
    """The provider the settings ask for; ChatError("no_backend") when none can answer."""
    if settings.uses_openai:
        api_key = settings.api_key_or_placeholder
        if api_key is None:
            raise ChatError("no_backend")
        return OpenAIProvider(
            api_key,
            settings.openai_base_url,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
    from chatbot.providers.local import load_local_provider  # llama_cpp is an optional extra

    return load_local_provider(settings.local_model_path)


def resolve_model(settings: Settings, provider: Provider) -> str:
    """CHATBOT_MODEL if set; else the local model, the server's first listed (allowed) model, or
    OpenAI's default; with CHATBOT_ALLOWED_MODELS, its first name when none of those is allowed.

    Raises only ChatError: a model list that cannot be read says to set CHATBOT_MODEL.
    """
    if settings.model:
        return settings.model
    if provider.backend == "local":
        return provider.list_models()[0]
    if settings.openai_base_url:
        try:
            models = provider.list_models()
        except ChatError as error:
            if error.kind != "bad_response":
                raise
            what = error.context["what"]
            raise ChatError("no_model", base_url=settings.openai_base_url, what=what) from None
        allowed = [model for model in models if settings.allows_model(model)]
        if allowed or settings.allowed_models:
            return (allowed or settings.allowed_models)[0]
        raise ChatError("not_found", model="(none listed at /v1/models)")
    return DEFAULT_OPENAI_MODEL if settings.allows_model(DEFAULT_OPENAI_MODEL) else settings.allowed_models[0]
