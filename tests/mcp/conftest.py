"""Driving StoryHub's MCP server with the SDK's own client (mcp.Client)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync


def result_json(result) -> Any:
    """The JSON a tool answered (its one text block)."""
    return json.loads(result.content[0].text)


def http_client(url: str, key: str | None, mode: str = "auto"):
    """The SDK's client on its streamable-HTTP transport, sending `key` as the bearer;
    mode "legacy" speaks the initialize handshake (protocol revisions before 2026)."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0))
    return Client(streamable_http_client(url, http_client=http), mode=mode)


def run_session(client, steps):
    """Open `client`, run `await steps(client)`, close it; from sync test code."""

    async def go():
        async with client:
            return await steps(client)

    return async_to_sync(go)()


async def call(client, name: str, **arguments) -> tuple[Any, bool]:
    """(the tool's JSON, is_error)."""
    result = await client.call_tool(name, arguments)
    return result_json(result), result.is_error


@pytest.fixture
def mcp_url(live_server) -> str:
    return live_server.url + "/mcp"


def in_process(user, key, steps):
    """Run `await steps(client)` with the SDK's client connected in-process to the server
    of (user, key); the tools run on this thread (mcp_app.bridge), inside the test's
    transaction."""
    from mcp import Client

    from mcp_app import bridge
    from mcp_app.caller import Caller
    from mcp_app.server import build_server

    async def go():
        async with Client(build_server(Caller(user=user, auth=key))) as client:
            return await steps(client)

    return bridge.run(go)
