"""A conversation's own model options, saved in its JSON under "settings"."""

from __future__ import annotations

import math
from dataclasses import dataclass

from history.models import Conversation

MIN_TEMPERATURE = 0.0
MAX_TEMPERATURE = 2.0  # the OpenAI API's range; local servers accept it too
MAX_SYSTEM_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class ConversationSettings:
    """None means "use the app's default", so changing the default reaches old conversations."""

    temperature: float | None = None
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        temperature = self.temperature
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not math.isfinite(temperature)
            or not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE
        ):
            raise ValueError(
                f"Temperature must be a number from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}."
            )
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ValueError("The system prompt must be text.")
        if self.system_prompt is not None and len(self.system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise ValueError(
                f"The system prompt is {len(self.system_prompt):,} characters; "
                f"the limit is {MAX_SYSTEM_PROMPT_CHARS:,}. Shorten it."
            )

    @classmethod
    def from_form(cls, temperature: float | None, system_prompt: str) -> ConversationSettings:
        """What the settings form gives: an empty system prompt means the app's default."""
        return cls(temperature=temperature, system_prompt=system_prompt.strip() or None)

    def to_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if value is not None}


def settings_of(conversation: Conversation) -> ConversationSettings:
    """The saved settings; values a hand-edited or imported file got wrong are ignored."""
    saved = conversation.extra.get("settings")
    if not isinstance(saved, dict):
        return ConversationSettings()
    values = {}
    for key in ("temperature", "system_prompt"):
        try:
            ConversationSettings(**{key: saved.get(key)})
        except (TypeError, ValueError):
            continue
        values[key] = saved.get(key)
    return ConversationSettings(**values)
