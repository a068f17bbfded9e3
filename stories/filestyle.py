"""Write changed values into a story file's own front matter, keeping its shape.

A story file that was imported keeps its front matter text (``metadata["_front_matter"]``,
see stories.storyfiles). When the story has changed since, the file is written back by
editing that text in place with ruamel.yaml's round-trip mode: the keys keep their order,
comments stay where they were, a quoted value stays quoted the same way, a folded or
literal string stays folded or literal, a number stays a number, an unquoted date stays
unquoted, flow lists stay flow lists, and the line endings (CRLF or LF) stay the file's.
Only the values that changed are touched.

The YAML the files are read with is PyYAML's safe loader (YAML 1.1), so a new string
value that 1.1 would read as something else (``yes``, ``1e3``, ``2025-01-01``) is written
double-quoted; what comes out is checked by the caller (it must import back to the story).

A domain module: it imports no app module.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString

__all__ = ["FrontMatter", "same_value"]

_RESOLVER = yaml.resolver.Resolver()
_INT_RE = re.compile(r"[-+]?[0-9]+")
_SEQ_RE = re.compile(r"^( *)- ", re.MULTILINE)


def _reads_as_str(text: str) -> bool:
    """Whether PyYAML's safe loader reads `text`, written plain, as this string."""
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


def _sequence_indent(source: str) -> tuple[int, int]:
    """(sequence, offset) of the file's block lists: `key:\\n  - a` is (4, 2), `key:\\n- a`
    is (2, 0)."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        match = _SEQ_RE.match(line)
        if not match or number == 0:
            continue
        parent = lines[number - 1]
        if parent.rstrip().endswith(":") and not parent.lstrip().startswith("-"):
            offset = len(match.group(1)) - (len(parent) - len(parent.lstrip()))
            if offset >= 0:
                return offset + 2, offset
    return 2, 0


def same_value(old: Any, new: Any) -> bool:
    """Whether a value read from the file and the value to write mean the same, at face
    value (`8` and `"8"`, a date and its ISO text, `null` and `""`)."""
    if old in (None, "") and new in (None, ""):
        return True
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(same_value(old[k], new[k]) for k in old)
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return len(old) == len(new) and all(same_value(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, Mapping | list | tuple) or isinstance(new, Mapping | list | tuple):
        return False
    if isinstance(old, bool) or isinstance(new, bool) or old is None or new is None:
        return old == new
    return _text(old) == _text(new)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def styled(old: Any, new: Any) -> Any:
    """`new`, written the way `old` was (quoting, folding, number, flow or block)."""
    if isinstance(new, dt.date) and isinstance(old, str):
        new = new.isoformat()
    if isinstance(new, str):
        return _styled_text(old, new)
    if isinstance(new, list | tuple) and isinstance(old, CommentedSeq):
        _replace_items(old, list(new))
        return old
    if isinstance(new, Mapping) and isinstance(old, CommentedMap):
        _replace_entries(old, new)
        return old
    if isinstance(new, Mapping):
        return _fresh_mapping(new)
    if isinstance(new, list | tuple):
        seq = CommentedSeq(styled(None, v) for v in new)
        seq.fa.set_flow_style()  # house style for a new list: [a, b]
        return seq
    return new


def _styled_text(old: Any, new: str) -> Any:
    if isinstance(old, ScalarString):
        return type(old)(new)
    if isinstance(old, int) and not isinstance(old, bool) and _INT_RE.fullmatch(new):
        return int(new)
    if new and not _reads_as_str(new):
        return DoubleQuotedScalarString(new)
    return new


def _fresh_mapping(new: Mapping) -> CommentedMap:
    out = CommentedMap()
    for key, value in new.items():
        out[key] = styled(None, value)
    return out


def _replace_items(seq: CommentedSeq, new: list) -> None:
    """Make `seq` hold `new`, keeping the items (and their comments) that stay."""
    for index, value in enumerate(new):
        if index < len(seq):
            if not same_value(seq[index], value):
                seq[index] = styled(seq[index], value)
        else:
            seq.append(styled(None, value))
    while len(seq) > len(new):
        del seq[len(seq) - 1]


def _replace_entries(mapping: CommentedMap, new: Mapping) -> None:
    for key in [k for k in mapping if k not in new]:
        del mapping[key]
    for key, value in new.items():
        if key not in mapping:
            mapping[key] = styled(None, value)
        elif not same_value(mapping[key], value):
            mapping[key] = styled(mapping[key], value)


class FrontMatter:
    """A front matter text, loaded for editing: `set`, `remove`, then `text()`."""

    def __init__(self, source: str):
        self.newline = "\r\n" if "\r\n" in source else "\n"
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never re-wrap a long line the file had on one line
        sequence, offset = _sequence_indent(source)
        self.yaml.indent(mapping=2, sequence=sequence, offset=offset)
        self.source = source
        self.doc = self._load()

    def _load(self) -> CommentedMap | None:
        try:
            doc = self.yaml.load(self.source)
        except (RuamelError, ValueError, TypeError, RecursionError):
            return None
        if doc is None:
            return CommentedMap()
        return doc if isinstance(doc, CommentedMap) else None

    @property
    def editable(self) -> bool:
        return self.doc is not None

    def edited(self, changes: Mapping[str, Any], removed: Iterable[str] = ()) -> str:
        """The front matter text with `changes` (key -> new value; a new key is added at
        the end) and without the keys in `removed`; the text itself is not changed."""
        if self.doc is None:
            raise ValueError("the front matter cannot be edited in place")
        doc = self.yaml.load(self.source) if self.source.strip() else CommentedMap()
        for key in removed:
            if key in doc:
                del doc[key]
        for key, value in changes.items():
            doc[key] = styled(doc.get(key), value)
        out = io.StringIO()
        if len(doc):
            self.yaml.dump(doc, out)
        text = out.getvalue()
        if self.newline != "\n":
            text = text.replace("\r\n", "\n").replace("\n", self.newline)
        return text
