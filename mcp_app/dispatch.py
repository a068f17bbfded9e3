"""One tool call, whatever the transport: find the tool (a read-only key has only the
read tools), check the arguments against its schema, run it with the write context of
the MCP surface (audit rows say source "mcp" and carry the key's id), and turn any
refusal into the API's error shape. Runs synchronously on the thread that owns the
request's database connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audit.context import write_context

from . import tools_read, tools_write
from .args import check_arguments
from .caller import Caller
from .catalog import READ_TOOLS, TOOLS
from .errors import error_body

HANDLERS: dict[str, Callable[[Caller, dict[str, Any]], Any]] = {
    name: getattr(tools_read, name, None) or getattr(tools_write, name) for name in TOOLS
}


def tools_for(caller: Caller) -> list[str]:
    """The tool names `caller` is offered (and may call)."""
    return [name for name in TOOLS if name in READ_TOOLS or not caller.read_only]


def call_tool(caller: Caller, name: str, arguments: dict[str, Any] | None) -> tuple[Any, bool]:
    """(result, is_error): the tool's result, or the error body when it refused."""
    if name not in TOOLS:
        return {"code": "not_found", "message": f"No tool '{name}'.", "details": {"name": ["Unknown tool."]}}, True
    if caller.read_only and name not in READ_TOOLS:
        return {"code": "permission_denied", "message": "This API key is read-only.", "details": {}}, True
    try:
        args = check_arguments(TOOLS[name]["inputSchema"], arguments)
        with write_context(source="mcp", api_key_id=caller.key_id):
            return HANDLERS[name](caller, args), False
    except Exception as exc:  # noqa: BLE001 - every failure becomes a tool error (errors.error_body)
        return error_body(exc), True
