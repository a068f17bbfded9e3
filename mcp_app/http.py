"""`/mcp`: the MCP server's streamable HTTP endpoint, served by the same WSGI workers
(gunicorn) as the API, and the protocol's protected-resource metadata (RFC 9728).

How a request is served: the view is a DRF view, so the caller is authenticated exactly
like the API (an API key as `Authorization: Bearer`, the same checks, the per-key rate
limit, 401 with `WWW-Authenticate: Bearer resource_metadata="…"` pointing at the
metadata). The body then goes to the SDK's own streamable-HTTP transport
(`StreamableHTTPSessionManager`, stateless, JSON responses) as one ASGI request, run on
the process's event loop for the length of this request (mcp_app.bridge): no session
and no stream outlive it,
nothing is shared between workers, and the SDK speaks every protocol revision its client
does (the initialize handshake and the 2026 single-exchange one). Tool work comes back
to this thread (mcp_app.server), so each call runs like an API request.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from sessions_app.api.authentication import ApiKeyAuthentication
from storyhub.validators import JSON_DOCUMENT_MAX_DEPTH, json_text_depth_exceeds

from . import bridge
from .caller import Caller

METADATA_PATH = "/.well-known/oauth-protected-resource"
MCP_PATH = "/mcp"


def resource_url(request) -> str:
    return request.build_absolute_uri(MCP_PATH)


def metadata_url(request) -> str:
    return request.build_absolute_uri(METADATA_PATH + MCP_PATH)


def protected_resource_metadata(request) -> JsonResponse:
    """RFC 9728 metadata for /mcp: a bearer token in the header, which is a StoryHub API
    key (made in the admin or with `manage.py create_api_key`). StoryHub runs no OAuth
    authorization server; MCP_AUTHORIZATION_SERVERS names one when a deployment has it."""
    body: dict[str, Any] = {
        "resource": resource_url(request),
        "bearer_methods_supported": ["header"],
        "resource_name": "StoryHub MCP server",
        "resource_documentation": request.build_absolute_uri("/api/docs/"),
    }
    servers = settings.MCP_AUTHORIZATION_SERVERS
    if servers:
        body["authorization_servers"] = list(servers)
    return JsonResponse(body)


class _RawBody(BaseParser):
    media_type = "*/*"


def _scope(request, body: bytes) -> dict[str, Any]:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()]
    headers = [h for h in headers if h[0] != b"content-length"] + [(b"content-length", str(len(body)).encode())]
    port = int(request.get_port() or 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": MCP_PATH,
        "raw_path": MCP_PATH.encode(),
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
        "server": (request.get_host().rsplit(":", 1)[0], port),
    }


async def _serve(caller: Caller, scope: dict[str, Any], body: bytes) -> tuple[int, list, bytes]:
    """One request through the SDK's stateless streamable-HTTP transport."""
    import anyio
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from .server import build_server

    answered = anyio.Event()
    status, headers, chunks = 500, [], []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                answered.set()

    manager = StreamableHTTPSessionManager(
        app=build_server(caller),
        json_response=True,
        stateless=True,
        max_request_body_size=max(len(body), 1),
    )
    try:
        with anyio.fail_after(settings.MCP_REQUEST_TIMEOUT):
            async with manager.run():
                await manager.handle_request(scope, receive, send)
    except TimeoutError:
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "The request timed out."}}
        return 504, [(b"content-type", b"application/json")], json.dumps(error).encode()
    finally:
        answered.set()
    return status, headers, b"".join(chunks)


class McpView(APIView):
    """POST /mcp (JSON-RPC). GET (a standalone event stream) and DELETE (ending a
    session) answer 405, as the transport allows a stateless server: neither exists
    here, and neither may hold a worker thread open."""

    http_method_names = ["post", "options"]

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [_RawBody]
    schema = None  # not part of the REST API's OpenAPI document

    def perform_content_negotiation(self, request, force=False):
        # The SDK answers Accept itself (a GET for an event stream gets its 405); DRF's
        # own errors (401, 413) are JSON whatever the client accepts.
        return super().perform_content_negotiation(request, force=True)

    def get_authenticate_header(self, request) -> str:
        return f'Bearer resource_metadata="{metadata_url(request)}"'

    def _relay(self, request) -> HttpResponse:
        body = request.body  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds it, as for the API (413)
        if body and json_text_depth_exceeds(body.decode("utf-8", "replace"), JSON_DOCUMENT_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {JSON_DOCUMENT_MAX_DEPTH} levels.")
        caller = Caller(user=request.user, auth=request.auth)
        status, headers, content = bridge.run(_serve, caller, _scope(request, body), body)
        response = HttpResponse(content, status=status)
        for name, value in headers:
            if name.lower() not in (b"content-length",):
                response[name.decode("latin-1")] = value.decode("latin-1")
        response["Cache-Control"] = "no-store"
        return response

    def post(self, request):
        return self._relay(request)
