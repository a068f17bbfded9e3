"""The MCP server on the official Python SDK (`mcp`, low-level `Server`): one server per
caller, whose handlers offer that caller's tools, resources and prompts.

The SDK's handlers are coroutines; StoryHub's services are synchronous Django code that
must run where the request's database connection lives. Every handler therefore hands
its work back to the thread that entered the SDK (mcp_app.bridge.on_caller): over HTTP
the request's own gunicorn thread, over stdio the command's, so transactions,
connection handling and the write context behave exactly as in an API request.

Imported only when an MCP request arrives or `mcp_stdio` starts (the SDK is large; the
other commands and the API do not pay for it).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import orjson
from mcp.server import Server
from mcp.shared.exceptions import MCPError

from . import content
from .bridge import on_caller
from .caller import Caller
from .catalog import TOOLS
from .dispatch import call_tool, tools_for

SERVER_NAME = "storyhub"
SERVER_VERSION = "1.0"
INSTRUCTIONS = (
    "StoryHub is the system of record for user stories. Projects are slugs, stories are KEY "
    "(other projects: project:KEY). Writes take the version you read; a stale one is a conflict, so read "
    "again and retry. Errors are JSON {code, message, details}."
)
RESOURCE_NOT_FOUND = -32002  # the protocol's code for an unknown resource


def _json_default(value: Any) -> Any:
    return str(value)


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _tool(name: str) -> types.Tool:
    spec = TOOLS[name]
    return types.Tool(
        name=name,
        description=spec["description"],
        input_schema=spec["inputSchema"],
        annotations=types.ToolAnnotations(**{_snake(k): v for k, v in spec["annotations"].items()}),
    )


# Built once per process: the catalog does not change while it runs.
SDK_TOOLS = {name: _tool(name) for name in TOOLS}


def build_server(caller: Caller) -> Server:
    """The SDK server for one caller (cheap: it only registers handlers)."""
    offered = tools_for(caller)

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[SDK_TOOLS[name] for name in offered])

    async def call(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        result, is_error = await on_caller(call_tool, caller, params.name, params.arguments)
        return types.CallToolResult(content=[types.TextContent(type="text", text=dumps(result))], is_error=is_error)

    async def list_templates(ctx, params) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="story",
            uri_template=content.URI_TEMPLATE,
            description="A story as its story file (YAML front matter + markdown).",
            mime_type="text/markdown",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def list_resources(ctx, params) -> types.ListResourcesResult:
        rows = await on_caller(content.resource_list, caller)
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri=r["uri"], name=r["name"], title=r["title"], mime_type="text/markdown") for r in rows
            ]
        )

    async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        try:
            text = await on_caller(content.resource_read, caller, str(params.uri))
        except content.ContentNotFound as exc:
            raise MCPError(RESOURCE_NOT_FOUND, str(exc), {"uri": str(params.uri)}) from None
        contents = types.TextResourceContents(uri=str(params.uri), mime_type="text/markdown", text=text)
        return types.ReadResourceResult(contents=[contents])

    async def list_prompts(ctx, params) -> types.ListPromptsResult:
        prompts = [
            types.Prompt(
                name=name,
                description=spec["description"],
                arguments=[
                    types.PromptArgument(name=a, description=d, required=required)
                    for a, d, required in spec["arguments"]
                ],
            )
            for name, spec in content.PROMPTS.items()
        ]
        return types.ListPromptsResult(prompts=prompts)

    async def get_prompt(ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            description, text = await on_caller(content.prompt_get, caller, params.name, params.arguments)
        except content.ContentNotFound as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        return types.GetPromptResult(description=description, messages=[message])

    def input_schema(name: str) -> dict[str, Any] | None:
        # The SDK checks a 2026 request's Mcp-Param headers against the schema; without
        # this it would run tools/list on every call to find it.
        return TOOLS[name]["inputSchema"] if name in offered else None

    server = Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )
    server.middleware = []  # no OpenTelemetry span per message: StoryHub exports no traces
    return server
