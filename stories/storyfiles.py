"""One story file in and out: markdown with YAML front matter (PRODUCT.md, "Story file
format"), or plain markdown in the style of `# Story 1.3: Title` + `Status: done`.

`parse_story_file(text, path)` turns a file into a bulk item (stories.bulk) plus warnings;
`render_story_file(story, path)` turns a stored story back into a file. Rendering prefers
the file exactly as it was imported (its front matter is kept, verbatim, in
``metadata["_front_matter"]``; ``None`` there means the file had none) whenever that text
still imports to the story as it is now, so an unchanged story exports byte for byte;
otherwise it edits that front matter in place (stories.filestyle, ruamel.yaml round trip):
only the values that changed are rewritten, and the key order, quoting, comments, folded
strings, numbers, dates and line endings stay the file's. A story with no kept front
matter (or one that cannot be edited so that it imports back) is written with the same
keys in the same order and the current values.

YAML is read with a safe loader only (libyaml's CSafeLoader when available).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from storyhub.validators import JSON_MAX_DEPTH, json_depth

from . import fields
from .filestyle import FrontMatter, same_value
from .models import PRIORITY_BY_WORD, priority_number

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The key in metadata holding the original front matter (None: the file had none).
SOURCE_KEY = "_front_matter"


def without_kept_text(metadata: Any) -> Any:
    """A story's metadata without the kept front matter text (SOURCE_KEY), for a reader
    who cannot see one of the story's links: the file's own text names the linked story
    (README "Visibility"). An export then writes the canonical keys; a re-import keeps
    the hidden link itself, as every write does."""
    if isinstance(metadata, dict) and SOURCE_KEY in metadata:
        return {k: v for k, v in metadata.items() if k != SOURCE_KEY}
    return metadata


# Front-matter key → bulk item field, for the keys StoryHub models (aliases included).
MODELED = fields.FILE_KEYS
# The order a story file's keys are written in when no original order is known.
CANONICAL_ORDER = fields.FILE_KEY_ORDER
FIELD_TO_KEY = {item: key for item, key in fields.FILE_KEY_OF.items() if item != key}
ITEM_FIELDS_FROM_BODY = ("body",)
ITEM_DEFAULTS: dict[str, Any]
# What an imported file means by a key it leaves out: the file is the story's truth, so a
# removed key clears the field. Status is the exception: a file without one leaves the
# story's status alone (new stories get the project's default status).
ITEM_DEFAULTS = {
    item: fields.item_default(item) for item in fields.FILE_KEY_OF if item not in ("key", "title", "status")
}

_HEADING_RE = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# '# KEY: Title', '# KEY - Title', '# KEY — Title' (em or en dash): the first separator.
_HEADING_SPLIT_RE = re.compile(r"^(.{1,60}?)(?:\s*:\s+|\s+[-\u2013\u2014]+\s+|\s*[\u2013\u2014]\s*)(.+)$")
_HEADING_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# A label before the title: 'Story 1.3', 'Story S02', 'User Story 12' (words, then an id).
_HEADING_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z ]{0,30}\s+[A-Za-z]*\d[A-Za-z0-9._-]*$")
_STATUS_LINE_RE = re.compile(r"^[ \t]*(?:[*_]{0,2})Status(?:[*_]{0,2}):(?:[*_]{0,2})[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_SECTION_RE = re.compile(r"^#{2,6}[ \t]", re.MULTILINE)
_STATUS_HEADING_RE = re.compile(r"^#{2,6}[ \t]+Status[ \t]*\n(?:[ \t]*\n)*[ \t]*(.+?)[ \t]*$", re.MULTILINE)


class StoryFileError(Exception):
    """A file that cannot be imported: `reason`, and the 1-based `line` when known."""

    def __init__(self, reason: str, *, line: int | None = None, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.field = field


@dataclass
class ParsedFile:
    path: str
    item: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # item field → 1-based line (body)
    front: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # item field → front-matter key
    heading_key: str | None = None  # a key the first heading names ('# KEY: Title')
    # A JSON export's story: the source fields it carries (source_repo / _path / _hash).
    exported_source: dict[str, Any] | None = None

    def line_of(self, item_field: str | None) -> int | None:
        """The line an item field came from (worked out only when an error needs it)."""
        name = item_field or ""
        if name in self.lines:
            return self.lines[name]
        if name in self.sources and self.front:
            return _key_lines(self.front).get(self.sources[name])
        if name == "metadata" or (self.front and name not in ITEM_FIELDS_FROM_BODY):
            return 2 if self.front else None
        return None


# --------------------------------------------------------------------------- reading


def decode(data: bytes) -> str:
    """UTF-8 text of a file, or StoryFileError naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StoryFileError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line=line
        ) from None
    return text


def split_front_matter(text: str) -> tuple[str | None, str, str]:
    """(front matter text or None, body, newline) — the body verbatim after the closing
    '---' line."""
    for newline in ("\n", "\r\n"):
        opening = "---" + newline
        if text.startswith(opening):
            rest = text[len(opening) :]
            if rest.startswith("---" + newline):
                return "", rest[len(opening) :], newline
            end = rest.find(newline + "---" + newline)
            if end >= 0:
                return rest[: end + len(newline)], rest[end + len(newline) + len(opening) :], newline
            if rest.endswith(newline + "---"):
                return rest[:-3], "", newline
            raise StoryFileError("front matter is not closed: no '---' line after the opening one", line=1)
    return None, text, "\n"


def load_front_matter(front: str) -> dict[str, Any]:
    try:
        data = yaml.load(front, Loader=SafeLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # An error found at the end of the front matter is reported on its last line.
        line = min(mark.line + 2, front.count("\n") + 1) if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise StoryFileError(f"malformed YAML front matter: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise StoryFileError(f"malformed YAML front matter: {exc}", line=2) from None
    except RecursionError:  # the loader builds nested values recursively
        raise StoryFileError("YAML front matter nested too deeply", line=2) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise StoryFileError(f"front matter must be a mapping of keys to values, not a {kind}", line=2)
    return data


def _key_lines(front: str) -> dict[str, int]:
    lines = {}
    for number, line in enumerate(front.splitlines(), start=2):
        match = re.match(r"([A-Za-z0-9_][^:\s]*)\s*:", line)
        if match and match.group(1) not in lines:
            lines[match.group(1)] = number
    return lines


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def generated_key(path: str, label: str | None) -> str:
    """A key for a file that gives none: readable (from the heading's label, e.g.
    "Story 1.3", else the file's name) and unique and stable per relative path."""
    digest = hashlib.sha1(path.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    base = label or PurePosixPath(path).stem
    prefix = re.sub(r"[^A-Za-z0-9.]+", "-", base).strip("-.").upper()[:40].strip("-.")
    return f"{prefix}-{digest}" if prefix else f"STORY-{digest}"


def _scalar_text(value: Any, name: str, parsed: ParsedFile) -> str:
    if isinstance(value, dict | list):
        kind = type(value).__name__
        line = _key_lines(parsed.front or "").get(name)
        raise StoryFileError(f"'{name}' must be a single value, not a {kind}", line=line, field=name)
    return "" if value is None else str(value)


def parse_story_file(text: str, path: str) -> ParsedFile:
    """A bulk item for the story in `text` (the file at relative `path`)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    front, body, _newline = split_front_matter(text)
    data = load_front_matter(front) if front is not None else {}
    parsed = ParsedFile(path=path, item={}, front=front)
    item = parsed.item
    metadata: dict[str, Any] = {}
    for name, value in data.items():
        target = MODELED.get(name) if isinstance(name, str) else None
        if target is None or (name == "tags" and "labels" in data):
            metadata[str(name)] = value
            continue
        item[target] = value
        parsed.sources[target] = name
    for name in ("key", "title", "epic", "status", "estimate", "branch_name", "author", "owner"):
        if name in item and item[name] is not None:
            item[name] = _scalar_text(item[name], parsed.sources.get(name, name), parsed)
    metadata[SOURCE_KEY] = front
    item["metadata"] = metadata
    item["body"] = body
    item["file_path"] = path

    heading = _HEADING_RE.search(body)
    heading_key, heading_title, heading_label = _heading_parts(heading.group(1).strip() if heading else None)
    parsed.heading_key = heading_key
    offset = (len(text) - len(body)) if front is not None else 0
    first_body_line = _line_at(text, offset)
    heading_at = heading.start() if heading else 0
    if not item.get("key"):
        if heading_key:
            item["key"] = heading_key
            parsed.lines["key"] = first_body_line + _line_at(body, heading_at) - 1
        else:
            item["key"] = generated_key(path, heading_label)
            parsed.warnings.append(f"no id in the file; generated key {item['key']} from its path")
    if not item.get("title"):
        if not heading_title:
            raise StoryFileError("no title: give `title:` in the front matter or a '# KEY: Title' heading", line=1)
        item["title"] = heading_title
        parsed.lines["title"] = first_body_line + _line_at(body, heading_at) - 1
    if item.get("status") in (None, ""):
        found = _status_in_body(body)
        if found:
            item["status"] = found.group(1).strip().strip("*_` ")
            parsed.lines["status"] = first_body_line + _line_at(body, found.start(1)) - 1
        else:
            item.pop("status", None)
    return parsed


def _heading_parts(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(key, title, label) from the text of the body's first heading: '# KEY: Title' (also
    'KEY - Title', 'KEY — Title'; a key has a digit), '# Story 1.3: Title' (a label: words
    then an id) or just '# Title', kept whole ('# Twitter/X: Curated feeds' is a title)."""
    if text is None:
        return None, None, None
    match = _HEADING_SPLIT_RE.match(text)
    if match:
        prefix, rest = match.group(1).strip(), match.group(2).strip()
        if _HEADING_KEY_RE.match(prefix) and any(ch.isdigit() for ch in prefix):
            return prefix, rest, None
        if _HEADING_LABEL_RE.match(prefix):
            return None, rest, prefix
    return None, text, None


def _status_in_body(body: str) -> re.Match[str] | None:
    # A "Status: done" line counts only before the first section heading (a line like
    # "Status: 200" inside the acceptance criteria is not the story's status).
    section = _SECTION_RE.search(body)
    found = _STATUS_LINE_RE.search(body, 0, section.start() if section else len(body))
    return found or _STATUS_HEADING_RE.search(body)


# --------------------------------------------------------------------------- writing


def _flow_plain(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9 _./+-]*", text)) and not text.endswith(" ")


def _block_plain(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_(][A-Za-z0-9 _./()+,'&-]*", text)) and not text.endswith(" ")


_RESOLVER = yaml.resolver.Resolver()


def _is_str(text: str) -> bool:
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


def yaml_scalar(value: Any, *, flow: bool = False, quote: bool = False) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    plain = _flow_plain(text) if flow else _block_plain(text)
    if not quote and plain and _is_str(text):
        return text
    return _UNSAFE_IN_YAML.sub(_escape_char, json.dumps(text, ensure_ascii=False))


# Characters YAML does not accept in a stream, or reads as line breaks (NEL, U+2028/9):
# written as escapes inside double quotes.
_UNSAFE_IN_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def yaml_value(value: Any, indent: int = 0, *, flow: bool = False, quote: bool = False) -> str:
    """The YAML for `value` after 'key:' (house style: flow lists, block mappings)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(v, indent, flow=True) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        if flow:
            return (
                "{"
                + ", ".join(f"{yaml_scalar(k, flow=True)}: {yaml_value(v, flow=True)}" for k, v in value.items())
                + "}"
            )
        pad = " " * (indent + 2)
        parts = [f"\n{pad}{yaml_scalar(str(k))}:{_after_colon(v, indent + 2)}" for k, v in value.items()]
        return "".join(parts)
    return yaml_scalar(value, flow=flow, quote=quote)


def _after_colon(value: Any, indent: int) -> str:
    rendered = yaml_value(value, indent)
    return rendered if rendered.startswith("\n") else " " + rendered


def story_front_matter(values: Mapping[str, Any], order: list[str]) -> str:
    """Front matter text for `values` (front-matter key → value) in `order`."""
    lines = []
    for key in order:
        value = values[key]
        if key == "estimate" and isinstance(value, str):
            rendered = " " + yaml_scalar(value, quote=True)  # house style: estimate: "3sp"
        elif isinstance(value, dict | list) and json_depth(value) > JSON_MAX_DEPTH:
            # Stored before the depth limit: JSON (which YAML reads) on one line, ASCII only,
            # not an indented block per level.
            rendered = " " + json.dumps(value, default=str)
        else:
            rendered = _after_colon(value, 0)
        lines.append(f"{yaml_scalar(key)}:{rendered}")
    return "\n".join(lines) + "\n"


def front_matter_values(story: Mapping[str, Any]) -> dict[str, Any]:
    """Front-matter key → value for an exported story dict (see stories.exporter)."""
    values: dict[str, Any] = {f.file_keys[0]: story.get(f.name) for f in fields.STORY_FIELDS if f.file_keys}
    deps = []
    for dep in story.get("dependencies", ()):
        if dep.get("type", "blocks") == "blocks" and not dep.get("description"):
            deps.append(dep["depends_on"])
        else:
            entry = {"key": dep["depends_on"], "type": dep.get("type", "blocks")}
            if dep.get("description"):
                entry["description"] = dep["description"]
            deps.append(entry)
    values["dependencies"] = deps
    values["labels"] = list(story.get("labels") or [])
    return values


def render_story_file(
    story: Mapping[str, Any],
    path: str,
    *,
    imports_as: Callable[[str], bool],
    edit_imports_as: Callable[[str], bool] | None = None,
    priority_scale: Mapping[int, int] | None = None,
) -> str:
    """The file for `story` (a dict as built by stories.exporter). `imports_as(text)` tells
    whether a candidate text imports back to exactly this story; the original file is
    preferred when it does. `edit_imports_as(text)` tells the same apart from the kept
    front matter text (which an edited file changes); with it, a changed story's file is
    its original edited in place."""
    metadata = dict(story.get("metadata") or {})
    body = story.get("body") or ""
    if SOURCE_KEY in metadata:
        source = metadata[SOURCE_KEY]
        if source is None:
            candidate = body
        elif isinstance(source, str):
            newline = "\r\n" if "\r\n" in source else "\n"
            candidate = f"---{newline}{source}---{newline}{body}"
        else:
            candidate = None
        if candidate is not None and imports_as(candidate):
            return candidate
        if isinstance(source, str) and edit_imports_as is not None:
            edited = _edited_in_place(story, source, body, edit_imports_as, priority_scale)
            if edited is not None:
                return edited
    source = metadata.pop(SOURCE_KEY, None)
    values = front_matter_values(story)
    original_order: list[str] = []
    if isinstance(source, str):
        try:
            original_order = [str(k) for k in load_front_matter(source)]
        except StoryFileError:
            original_order = []
    if "tags" in original_order and "labels" not in original_order:
        values["tags"] = values.pop("labels")
    wanted = {k: v for k, v in values.items() if k in ("id", "title", "status", "priority") or _present(v)}
    for key in ("dependencies", "labels", "tags"):
        if key in original_order and key in values:
            wanted[key] = values[key]
    wanted.update(metadata)
    order = [k for k in original_order if k in wanted]
    order += [k for k in CANONICAL_ORDER if k in wanted and k not in order]
    order += sorted(k for k in wanted if k not in order)
    newline = "\r\n" if isinstance(source, str) and "\r\n" in source else "\n"
    front = story_front_matter(wanted, order).replace("\n", newline)
    return f"---{newline}{front}---{newline}{body}"


def _wanted_values(
    story: Mapping[str, Any], original: Mapping[str, Any], scale: Mapping[int, int] | None = None
) -> dict[str, Any]:
    """Front-matter key -> value the file should say for `story` (with the alias the file
    used: `tags` for labels; a priority the file wrote as a number as a number of the
    project's `scale`), the unmodelled keys (metadata) included."""
    values = front_matter_values(story)
    written = original.get("priority")
    if (
        scale
        and isinstance(written, int)
        and not isinstance(written, bool)
        and values.get("priority") in PRIORITY_BY_WORD
    ):
        number = priority_number(PRIORITY_BY_WORD[values["priority"]], dict(scale), written)
        if number is not None:
            values["priority"] = number
    if "tags" in original and "labels" not in original:
        values["tags"] = values.pop("labels")
    metadata = {k: v for k, v in (story.get("metadata") or {}).items() if k != SOURCE_KEY}
    values.update(metadata)
    return values


def _edited_in_place(
    story: Mapping[str, Any],
    source: str,
    body: str,
    imports_as: Callable[[str], bool],
    scale: Mapping[int, int] | None = None,
) -> str | None:
    """The original file with only the changed values rewritten (stories.filestyle), or
    None when that cannot give a file that imports as `story`.

    The values that differ at face value are written; then each of them (and each key the
    file did not have) is put back as the file had it if the file still imports as the
    story without it (`In Progress` for the status slug `in_progress`, a title the heading
    already gives), so only what really changed is touched."""
    try:
        original = load_front_matter(source)
    except StoryFileError:
        return None
    front = FrontMatter(source)
    if not front.editable:
        return None
    newline = front.newline
    wanted = _wanted_values(story, original, scale)
    changes = {k: v for k, v in wanted.items() if k in original and not same_value(original[k], v)}
    changes.update({k: v for k, v in wanted.items() if k not in original and _present(v)})
    removed = [k for k in original if k not in wanted]

    def text(with_changes: Mapping[str, Any]) -> str:
        return f"---{newline}{front.edited(with_changes, removed)}---{newline}{body}"

    candidate = text(changes)
    if not imports_as(candidate):
        return None
    for key in list(changes):
        fewer = {k: v for k, v in changes.items() if k != key}
        shorter = text(fewer)
        if imports_as(shorter):
            changes, candidate = fewer, shorter
    return candidate


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def export_path(story: Mapping[str, Any]) -> str:
    """Where a story goes in a markdown export: its file_path when that is a safe relative
    path, else `epic/KEY-slug.md`."""
    raw = (story.get("file_path") or "").replace("\\", "/")
    if raw and safe_relative_path(raw):
        return raw
    from django.utils.text import slugify

    slug = slugify(story["title"])[:60].strip("-")
    name = f"{story['key']}-{slug}.md" if slug else f"{story['key']}.md"
    return f"{story.get('epic') or 'no-epic'}/{name}"


def safe_relative_path(path: str) -> bool:
    """A relative path without '..', drive letters, NULs or empty parts."""
    if not path or path.startswith(("/", "\\")) or "\x00" in path or "\\" in path:
        return False
    if re.match(r"^[A-Za-z]:", path):
        return False
    parts = path.split("/")
    return all(part not in ("", ".", "..") for part in parts)
