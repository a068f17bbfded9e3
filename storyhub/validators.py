"""Limits on the input StoryHub stores, in one place: JSON values (story metadata and
labels, project and backlog metadata / settings, a status's allowed transitions) and the
JSON documents the API parses. The model fields' validators, the services (bulk upsert,
import), the API's JSON parser and the admin's JSON form fields all use these.

Why: an over-deep value is accepted by the standard library (up to its recursion limit)
but not by orjson (254 levels on output), which broke exports half-way; a document nested
~1,000 levels deep crashed the parser itself; a lone surrogate (``"\\ud800"``) is valid
JSON text but not Unicode: PostgreSQL refuses it, SQLite kept it in JSON columns and its
driver cannot encode it for text columns (a 500). The same for NUL and for 1e400, which
decodes to infinity.

No imports from the apps: models import this module.
"""

from __future__ import annotations

import json
import math
from itertools import accumulate

import orjson
from django.core.exceptions import ValidationError

# One stored JSON value: containers nested at most this deep ({"a": {"b": 1}} is 2) ...
JSON_MAX_DEPTH = 32
# ... and at most this many bytes as compact UTF-8 JSON.
JSON_MAX_BYTES = 64 * 1024
# A whole JSON document (an API request body): refused before it is decoded when nested
# deeper than this. Above JSON_MAX_DEPTH plus any envelope, so an over-deep value in a
# body gets its field's error; far below the decoder's recursion limit (~1,000).
JSON_DOCUMENT_MAX_DEPTH = 512


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None: a NUL character (PostgreSQL refuses it) or a
    lone surrogate (not Unicode: PostgreSQL refuses it, SQLite's driver cannot encode it)."""
    if "\x00" in text:
        return "NUL characters are not allowed."
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"Lone surrogate U+{ord(text[exc.start]):04X} is not allowed: text must be valid Unicode."
    return None


def _walk_problem(value) -> str | None:
    """The first unstorable string (or key) in `value`, its nesting beyond JSON_MAX_DEPTH,
    or more parts than JSON_MAX_BYTES could hold (each takes a byte at least; this also
    stops YAML aliases that repeat one part exponentially, or a value that contains
    itself). Iterative, so any depth is safe to walk."""
    stack = [(value, 0)]
    parts = 0
    while stack:
        item, depth = stack.pop()
        parts += 1
        if parts > JSON_MAX_BYTES:
            return f"Larger than {JSON_MAX_BYTES:,} bytes as JSON (the limit for a JSON value)."
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
            continue
        if isinstance(item, float) and not math.isfinite(item):  # 1e400 decodes to infinity
            return "NaN and infinity cannot be stored."
        if isinstance(item, dict):
            children = list(item.values())
            stack.extend((key, depth) for key in item if isinstance(key, str))
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > JSON_MAX_DEPTH:
            return f"Nested deeper than {JSON_MAX_DEPTH} levels (the limit for a JSON value)."
        stack.extend((child, depth + 1) for child in children)
    return None


def json_depth(value) -> int:
    """How many containers `value` nests (a scalar: 0, {"a": [1]}: 2), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return deepest


def text_problems(fields) -> dict[str, str]:
    """Field name -> why a string in that field (keys included) cannot be stored, or why
    the field is too deep or large to walk, for a mapping of input fields (a bulk item)."""
    problems = {}
    for name, value in fields.items():
        problem = text_problem(name) if isinstance(name, str) else None
        # A plain string (most fields) is checked without the walk's bookkeeping.
        problem = problem or (text_problem(value) if type(value) is str else _walk_problem(value))
        if problem:
            problems[str(name)] = problem
    return problems


def json_value_problem(value) -> str | None:
    """Why `value` (a decoded JSON value) may not be stored, or None."""
    problem = _walk_problem(value)
    if problem:
        return problem
    try:
        # orjson writes the same compact UTF-8 JSON give or take a byte per float
        # ("1e16" against "1e+16"), many times faster: far below the limit, that settles it.
        if len(orjson.dumps(value, default=str)) < JSON_MAX_BYTES // 2:
            return None
    except (TypeError, orjson.JSONEncodeError):  # non-string keys, integers beyond 64 bits
        pass
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"))
    if size > JSON_MAX_BYTES:
        return f"Larger than {JSON_MAX_BYTES:,} bytes as JSON (this one has {size:,}; the limit for a JSON value)."
    return None


def validate_json_value(value) -> None:
    """Django validator for every stored JSON value: at most JSON_MAX_DEPTH levels and
    JSON_MAX_BYTES bytes, no NUL character or lone surrogate in its strings and keys."""
    problem = json_value_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_json_value")


_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_NOT_BRACKETS = bytes(c for c in range(256) if _STEP[c] == 0)


def json_text_depth_exceeds(text: str, limit: int = JSON_DOCUMENT_MAX_DEPTH) -> bool:
    """Whether the JSON text `text` opens more than `limit` nested containers, found
    without decoding it (so before a recursive decoder could run out of stack). Brackets
    inside strings do not count. For malformed text the answer may err on "too deep"."""
    if text.count("[") + text.count("{") <= limit:
        return False
    # Drop escaped backslashes, then escaped quotes: every quote left opens or closes a
    # string, so every other piece of the text is outside strings (in valid JSON, and in
    # the valid part a decoder reads before it stops at an error).
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[::2]).encode("ascii", "ignore")
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit
