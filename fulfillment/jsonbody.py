"""The one JSON parser for bodies from outside: bounded in size, nesting and the length of its numbers.

Python's own parser recurses once per level (10,000 nested arrays end in a RecursionError) and turns any run of
digits into an int (5,000 digits end in a ValueError, and 30 digits in an OverflowError once they reach the
database). What the store and the warehouse API send is a few levels deep with 64-bit ids, so anything past
these limits is refused as a client error before it is parsed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
# A 64-bit id has at most 20 characters with its sign; a float the store sends is far shorter than this.
MAX_NUMBER_CHARS = 24

# A JSON string, escapes included: its brackets are text, not nesting.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]")
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


class BadJson(ValueError):
    """The body is not JSON we take; the message says why, for the sender."""


def _check_depth(body: bytes, max_depth: int) -> None:
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # too few brackets to nest deeper than allowed: the common case costs two scans in C
    brackets = _NOT_A_BRACKET.sub(b"", _STRING.sub(b'""', body))
    # Each pass removes the innermost level; what is left after `max_depth` passes nests deeper (or is unbalanced).
    for _ in range(max_depth):
        if not brackets:
            return
        brackets = _INNERMOST_PAIR.sub(b"", brackets)
    if brackets:
        raise BadJson(f"JSON nests deeper than {max_depth} levels or its brackets do not match")


def _number(max_chars: int, convert):
    def parse(text: str):
        if len(text) > max_chars:
            raise BadJson(f"a number in the body has more than {max_chars} characters")
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise BadJson("a number in the body is out of range")
        return value

    return parse


def _constant(name: str):
    raise BadJson(f"{name} is not JSON")


def parse_json(
    body: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, max_number_chars: int = MAX_NUMBER_CHARS
) -> Any:
    """The value of `body`, or BadJson when it is larger, deeper or has longer numbers than allowed."""
    if len(body) > max_bytes:
        raise BadJson(f"the body is larger than {max_bytes} bytes")
    _check_depth(body, max_depth)
    try:
        text = body.decode("utf-8")
        return json.loads(
            text,
            parse_int=_number(max_number_chars, int),
            parse_float=_number(max_number_chars, float),
            parse_constant=_constant,
        )
    except UnicodeDecodeError as exc:
        raise BadJson("the body is not UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON: {exc}") from exc


def parse_json_object(body: bytes, **limits: int) -> dict[str, Any]:
    payload = parse_json(body, **limits)
    if not isinstance(payload, dict):
        raise BadJson("the body must be a JSON object")
    return payload
