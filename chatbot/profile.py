"""The bot profile: one TOML file says who the bot is, what it says first and what it answers by rule."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "default.toml"
DEFAULT_NAME = "Chatbot"
MAX_STARTERS = 6
MAX_PERSONA_CHARS = 20_000
MAX_TEXT_CHARS = 2_000
TOP_KEYS = ("name", "avatar", "persona", "greeting", "starters", "fallback", "scripted")
SCRIPTED_KEYS = ("answer", "exact", "keywords", "pattern")
MATCH_KINDS = ("exact", "keywords", "pattern")
_FIX_PATH = "set CHATBOT_PROFILE to the path of a .toml file (see chatbot/profiles/), or unset it."


def normalize(text: str) -> str:
    """Case, runs of whitespace and trailing ?!.,; do not change what a short message asks."""
    return " ".join(text.casefold().split()).rstrip("?!.,; ")


def _word_pattern(keyword: str) -> re.Pattern[str]:
    """A keyword (or phrase) matches as whole words only, so 'cost' never matches inside 'costume'."""
    words = r"\s+".join(re.escape(word) for word in keyword.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class ScriptedAnswer:
    """A fixed reply given without asking the model; exactly one of exact, keywords, pattern says when."""

    answer: str
    exact: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    _exact: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _words: tuple[re.Pattern[str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Refuse ambiguous entries and prepare the matchers once, not on every message."""
        kinds = [kind for kind in MATCH_KINDS if getattr(self, kind)]
        if len(kinds) != 1:
            raise ValueError(f"A scripted answer needs exactly one of exact, keywords, pattern; got {kinds}.")
        pattern = re.compile(self.pattern) if isinstance(self.pattern, str) else self.pattern
        if pattern is not None and not pattern.flags & re.IGNORECASE:
            pattern = re.compile(pattern.pattern, pattern.flags | re.IGNORECASE)
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "_exact", frozenset(normalize(text) for text in self.exact))
        object.__setattr__(self, "_words", tuple(_word_pattern(word) for word in self.keywords))

    def matches(self, text: str) -> bool:
        """Whether this entry answers the message."""
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        if self.exact:
            return normalize(text) in self._exact
        return all(word.search(text) for word in self._words)


@dataclass(frozen=True)
class Profile:
    """Who the bot is; the defaults are a plain assistant with no persona and no scripted answers."""

    name: str = DEFAULT_NAME
    avatar: str | None = None
    persona: str | None = None
    greeting: str | None = None
    starters: tuple[str, ...] = ()
    scripted: tuple[ScriptedAnswer, ...] = ()
    fallback: str | None = None
    source: str = ""

    def scripted_answer(self, text: str) -> str | None:
        """The first matching entry wins, so a file lists its specific answers before its general ones."""
        return next((entry.answer for entry in self.scripted if entry.matches(text)), None)


class ProfileError(ValueError):
    """A profile the app cannot use; the message names the file, the key, the problem and the fix."""

    def __init__(self, source: str, problem: str, key: str | None = None):
        self.source, self.key = source, key
        super().__init__(f"Bot profile '{source}': {problem}")


def _describe(value: object) -> str:
    """Name a value's type the way the TOML file's author wrote it."""
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a table"
    if isinstance(value, str | bool):
        return f"text ({value!r})" if isinstance(value, str) else f"true/false ({str(value).lower()})"
    return f"{'a number' if isinstance(value, int | float) else 'a date or time'} ({value})"


class _Checker:
    """Turns each problem in the parsed TOML into a ProfileError naming the file and the key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ProfileError(self.source, f"'{key}' {problem}", key)

    def unknown(self, table: dict, known: tuple[str, ...], where: str | None = None) -> None:
        """Typos fail loudly, with a suggestion, instead of quietly changing nothing."""
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                place = f" in '{where}'" if where else ""
                raise ProfileError(
                    self.source,
                    f"unknown key '{key}'{place}{hint}. Known keys: {', '.join(known)}.",
                    f"{where}.{key}" if where else key,
                )

    def check(self, value: object, key: str, hint: str, limit: int = MAX_TEXT_CHARS) -> str:
        """Text that is really text, not blank, and not longer than limit; returned stripped."""
        if not isinstance(value, str):
            self.fail(key, f'must be text, not {_describe(value)}. Put it in quotes, like "...".')
        text = value.strip()
        if not text:
            self.fail(key, f"is empty. {hint}")
        if len(text) > limit:
            self.fail(key, f"has {len(text):,} characters; the limit is {limit:,}. Shorten it.")
        return text

    def text(self, table: dict, key: str, hint: str = "Write it, or remove the key.", **kw) -> str | None:
        return None if key not in table else self.check(table[key], key, hint, **kw)

    def strings(self, table: dict, key: str, label: str, example: str) -> tuple[str, ...]:
        """A list of non-blank texts; an item is named label[n], counting from 1."""
        if (value := table.get(key)) is None:
            return ()
        shape = f"must be a list of strings, like {key} = [{example}]"
        if not isinstance(value, list):
            self.fail(label, f"{shape}; it is {_describe(value)}.")
        for number, item in enumerate(value, 1):
            if not isinstance(item, str):
                self.fail(label, f"{shape}; item {number} is {_describe(item)}.")
        hint = "Write the text, or remove the item."
        return tuple(self.check(item, f"{label}[{number}]", hint) for number, item in enumerate(value, 1))

    def scripted(self, value: object) -> tuple[ScriptedAnswer, ...]:
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            self.fail(
                "scripted",
                "must be [[scripted]] tables (two brackets), each with 'answer' and one of 'exact', "
                "'keywords' or 'pattern'; see chatbot/profiles/customer_service.toml.",
            )
        return tuple(self.entry(entry, f"scripted[{number}]") for number, entry in enumerate(value, 1))

    def entry(self, entry: dict, label: str) -> ScriptedAnswer:
        """One [[scripted]] table: an answer and exactly one way to match."""
        self.unknown(entry, SCRIPTED_KEYS, label)
        if "answer" not in entry:
            self.fail(label, "has no 'answer'. Add answer = \"...\" with the reply the bot should give.")
        answer = self.check(entry["answer"], f"{label}.answer", "Write the reply the bot should give.")
        kinds = [kind for kind in MATCH_KINDS if kind in entry]
        if not kinds:
            self.fail(label, "does not say when to answer. Add one of 'exact', 'keywords' or 'pattern'.")
        if len(kinds) > 1:
            both = " and ".join(f"'{kind}'" for kind in kinds)
            self.fail(label, f"has both {both}; use one per entry, or split it into two entries.")
        kind = kinds[0]
        key = f"{label}.{kind}"
        if kind == "pattern":
            self.check(entry["pattern"], key, "Write a regular expression, or use 'keywords'.")
            try:
                return ScriptedAnswer(answer, pattern=re.compile(entry["pattern"], re.IGNORECASE))
            except re.error as error:
                self.fail(key, f"is not a valid regular expression ({error}). Fix it or use 'keywords'.")
        items = self.strings(entry, kind, key, '"opening hours", "when are you open"')
        if not items:
            self.fail(key, f"is an empty list. List at least one {kind} entry, or remove the entry.")
        for number, item in enumerate(items, 1):
            if kind == "exact" and not normalize(item):
                self.fail(f"{key}[{number}]", "is only punctuation, which would match anything. Use words.")
        return ScriptedAnswer(answer, **{kind: items})


def parse_profile(data: dict, source: str) -> Profile:
    """Check every key, so a mistake stops the app at startup rather than quietly changing the bot."""
    check = _Checker(source)
    check.unknown(data, TOP_KEYS)
    starters = check.strings(data, "starters", "starters", '"What can you do?"')
    if len(starters) > MAX_STARTERS:
        count, extra = len(starters), len(starters) - MAX_STARTERS
        check.fail("starters", f"has {count} entries; at most {MAX_STARTERS} are shown. Remove {extra}.")
    name_hint = f"Give the bot a name, or remove the key to use '{DEFAULT_NAME}'."
    return Profile(
        name=check.text(data, "name", name_hint) or DEFAULT_NAME,
        avatar=check.text(data, "avatar"),
        persona=check.text(data, "persona", limit=MAX_PERSONA_CHARS),
        greeting=check.text(data, "greeting"),
        starters=starters,
        scripted=check.scripted(data["scripted"]) if "scripted" in data else (),
        fallback=check.text(data, "fallback"),
        source=source,
    )


def _not_found(path: Path) -> str:
    """Say where the app looked, and point at a shipped profile of the same name if there is one."""
    problem = f"not found; {_FIX_PATH}"
    shipped = PROFILES_DIR / f"{path.stem}.toml"
    if shipped.is_file():
        problem += f" Did you mean 'chatbot/profiles/{shipped.name}'?"
    if not path.is_absolute():
        problem += f" Relative paths start from {Path.cwd()}."
    return problem


def load_profile(path: str | Path | None = None) -> Profile:
    """Read and check a profile file; None (CHATBOT_PROFILE unset) means the shipped default."""
    if path is None or not str(path).strip():
        path = DEFAULT_PROFILE
    source = str(path)
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(source, _not_found(path)) from None
    except IsADirectoryError:
        raise ProfileError(source, f"is a folder, not a file; {_FIX_PATH}") from None
    except OSError as error:
        raise ProfileError(source, f"cannot be read ({error.strerror}). Check its permissions.") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate the byte-order mark some Windows editors add
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ProfileError(
            source, f"is not UTF-8 text (byte {raw[error.start]:#04x} on line {line}). Save it as UTF-8."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(
            source, f'is not valid TOML: {error}. Fix that line; text needs quotes, like greeting = "Hi!".'
        ) from None
    return parse_profile(data, source)
