"""A failed tool call's error, in the API's one error shape: {"code", "message",
"details", …} with the same stable codes (not_found, permission_denied, conflict,
dependency_cycle with "cycle", blocked with "blockers", validation_error naming the
argument, bulk_invalid, import_failed, database_*), produced by the API's own exception
handler so the two surfaces cannot drift apart."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

from stories.api.exceptions import exception_handler
from storyhub.middleware import classify

logger = logging.getLogger("storyhub.mcp")

INTERNAL = {"code": "internal_error", "message": "The tool failed unexpectedly; nothing was changed.", "details": {}}


def error_body(exc: Exception) -> dict[str, Any]:
    """The error shape for `exc`; an unexpected exception is logged and answered as
    internal_error (its transaction was already rolled back), never a broken session."""
    failure = classify(exc)
    if failure is not None:
        connection.close_if_unusable_or_obsolete()
        return {"code": failure.code, "message": failure.message, "details": {}, "retry_after": failure.retry_after}
    response = exception_handler(exc, {})
    if response is not None:
        return dict(response.data)
    logger.exception("MCP tool failed")
    return dict(INTERNAL)
