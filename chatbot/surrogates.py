"""Lone surrogates: text a JSON escape ("\\ud83d") can carry into Python but UTF-8 cannot save or send."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_HIGH = re.compile(r"[\ud800-\udbff]\Z")


def mend(text: str) -> str:
    """Pairs joined into the character they stand for; a surrogate left alone becomes U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class SurrogateJoiner:
    """Mends streamed text whose surrogate pairs a server split across two deltas."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, delta: str) -> str:
        """The delta mended, holding back a trailing high surrogate until the next delta says what it is."""
        text = self._held + delta
        self._held = text[-1] if _HIGH.search(text) else ""
        return mend(text[: len(text) - len(self._held)])

    def flush(self) -> str:
        """A high surrogate the stream ended on, as U+FFFD."""
        held, self._held = self._held, ""
        return mend(held)
