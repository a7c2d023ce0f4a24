"""JSON as the history format allows it: what Python's parser lets through or chokes on is refused in words.

Python's json accepts NaN and Infinity, turns 1e999 into infinity, keeps a lone surrogate escape ("\\ud800")
as a string no page can send, and raises a bare ValueError past 4,300 digits: each would become a
traceback later. Here each is a BadJson whose reason completes "The file …". A top-level list can be
read one item at a time, so an import can stop at its limit without decoding the rest.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # a high or low surrogate, escaped
_SURROGATE = re.compile("[\ud800-\udfff]")  # one left in a decoded string was not half of a pair
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MAX_DIGITS = sys.get_int_max_str_digits() or 4300


class BadJson(ValueError):
    """Bytes that are not JSON the history can keep; `reason` completes "The file …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _constant(name: str) -> float:
    raise BadJson("holds NaN or Infinity, which JSON does not allow")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("holds NaN or Infinity, which JSON does not allow")
    return value


_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant)


def text_of(raw: bytes) -> str:
    """The file's text: UTF-8, a BOM tolerated; BadJson if it is empty or not UTF-8."""
    if not raw.strip():
        raise BadJson("is empty")
    try:
        return raw.decode("utf-8-sig")  # tolerate the BOM some editors add
    except UnicodeDecodeError as error:
        raise BadJson(f"is not UTF-8 text (bad byte at offset {error.start})") from None


def _check_text(value: object) -> None:
    """BadJson if a string anywhere in the value holds a lone surrogate (walked without recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                raise BadJson(
                    f"holds a lone surrogate escape (\\u{ord(found.group()):04x}), which is not text"
                )
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _decode_at(text: str, position: int, escapes: bool) -> tuple[object, int]:
    """One JSON value starting at `position`, checked; BadJson for anything the history cannot keep."""
    try:
        value, end = _DECODER.raw_decode(text, position)
    except BadJson:
        raise
    except json.JSONDecodeError as error:
        raise _not_json(text, error.pos, error.msg) from None
    except ValueError:  # int() past sys.get_int_max_str_digits(), the only other ValueError of the parser
        raise BadJson(f"holds a number with more than {_MAX_DIGITS:,} digits") from None
    except RecursionError:
        raise BadJson("nests JSON too deeply to read") from None
    if escapes:
        _check_text(value)
    return value, end


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _not_json(text: str, position: int, expected: str) -> BadJson:
    error = json.JSONDecodeError(expected, text, position)
    return BadJson(f"is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})")


def _expect_end(text: str, position: int) -> None:
    """BadJson unless only whitespace follows `position`."""
    end = _skip(text, position)
    if end != len(text):
        raise _not_json(text, end, "Extra data")


def loads(text: str) -> object:
    """The whole document; BadJson saying what is wrong."""
    value, end = _decode_at(text, _skip(text, 0), bool(_SURROGATE_ESCAPE.search(text)))
    _expect_end(text, end)
    return value


def is_list(text: str) -> bool:
    """Whether the document is a JSON list, which `items` can read lazily."""
    start = _skip(text, 0)
    return text.startswith("[", start)


def items(text: str) -> Iterator[object]:
    """The items of a document that is a JSON list, decoded one by one as they are asked for."""
    escapes = bool(_SURROGATE_ESCAPE.search(text))
    position = _skip(text, _skip(text, 0) + 1)
    if text.startswith("]", position):
        _expect_end(text, position + 1)
        return
    while True:
        value, position = _decode_at(text, position, escapes)
        yield value
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
            continue
        if text.startswith("]", position):
            break
        raise _not_json(text, position, "Expecting ',' delimiter")
    _expect_end(text, position + 1)
