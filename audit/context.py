"""Who and where a write comes from, carried alongside the call without threading it
through every signature: the request id, the source (api / admin / mcp / cli / import
/ sync / system) and the API key used. Services read it when they write their audit row."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

SOURCES = ("api", "admin", "mcp", "cli", "import", "sync", "system")


@dataclass(frozen=True)
class WriteContext:
    source: str = "system"
    request_id: str | None = None
    api_key_id: int | None = None


_current: contextvars.ContextVar[WriteContext] = contextvars.ContextVar(
    "storyhub_write_context",
    default=WriteContext(),  # noqa: B039 (frozen dataclass)
)


def current() -> WriteContext:
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _checked(changes: dict) -> dict:
    if "source" in changes and changes["source"] not in SOURCES:
        raise ValueError(f"unknown source {changes['source']!r}")
    return changes


def update_context(**changes) -> None:
    """Replace some fields for the rest of the enclosing `write_context` block (e.g. the
    API key, known once the request is authenticated; the request's block resets it)."""
    _current.set(replace(_current.get(), **_checked(changes)))


@contextmanager
def write_context(**changes) -> Iterator[WriteContext]:
    """Run a block with some fields of the write context replaced."""
    token = _current.set(replace(_current.get(), **_checked(changes)))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
