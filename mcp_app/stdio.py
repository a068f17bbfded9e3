"""The stdio transport: the SDK's `stdio_server` and `Server.run` (which serves both the
initialize handshake and the 2026 single-exchange protocol), run from this thread with
mcp_app.bridge, so the tools' synchronous work comes back to it (mcp_app.server)
and runs like an API request: one thread, one database connection."""

from __future__ import annotations

from django.db import close_old_connections

from . import bridge
from .caller import Caller


async def _run(caller: Caller) -> None:
    from mcp.server.stdio import stdio_server

    from .server import build_server

    server = build_server(caller)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve(key) -> None:
    """Serve until stdin closes, as the owner of `key` (an authenticated ApiKey)."""
    close_old_connections()
    bridge.run(_run, Caller(user=key.user, auth=key))
