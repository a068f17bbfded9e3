"""A database that is down, overloaded or too slow gets a clear 503 with Retry-After,
never a 500 traceback.

`DatabaseUnavailableMiddleware` turns the driver's "cannot talk to the database" errors
raised by a view (API and pages alike) into one JSON error; `server_error` (handler500)
does the same for the few database touches outside views (e.g. saving a session). The
connection that failed is closed at the end of the request (Django's
close_if_unusable_or_obsolete; the pool discards broken connections and checks the ones
it hands out), so the next request recovers without a restart.
/readyz reports the same state (storyhub.health)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.defaults import server_error as default_server_error

logger = logging.getLogger("storyhub.database")

# SQLSTATEs that mean "try again shortly" rather than "the database is gone".
_TIMEOUT_STATES = {"57014"}  # query_canceled: statement_timeout or a cancel request
_BUSY_STATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock_not_available


@dataclass(frozen=True)
class DatabaseFailure:
    code: str
    message: str
    retry_after: int


UNAVAILABLE = DatabaseFailure(
    "database_unavailable", "The database is unavailable right now; retry in a few seconds.", 5
)
TIMEOUT = DatabaseFailure(
    "database_timeout", "The database did not answer in time; the request changed nothing. Retry shortly.", 2
)
BUSY = DatabaseFailure(
    "database_busy", "The database is busy with conflicting work; the request changed nothing. Retry shortly.", 1
)


def classify(exc: BaseException | None) -> DatabaseFailure | None:
    """The kind of database failure `exc` is, or None when it is not one (a bug, bad SQL,
    a constraint: those stay 500s / 4xx elsewhere)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    cause = exc.__cause__ or exc
    state = getattr(cause, "sqlstate", None)
    if state in _TIMEOUT_STATES:
        return TIMEOUT
    if state in _BUSY_STATES or "database is locked" in str(exc):  # the last one is SQLite's
        return BUSY
    return UNAVAILABLE


def failure_response(failure: DatabaseFailure) -> JsonResponse:
    response = JsonResponse(
        {"code": failure.code, "message": failure.message, "details": {}, "retry_after": failure.retry_after},
        status=503,
    )
    response["Retry-After"] = str(failure.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def database_error_response(request, exc: BaseException | None) -> JsonResponse | None:
    failure = classify(exc)
    if failure is None:
        return None
    logger.warning(
        "%s %s: %s (%s: %s)",
        request.method,
        request.path,
        failure.code,
        exc.__class__.__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
    )
    return failure_response(failure)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_error_response(request, exception)


def server_error(request, *args, **kwargs):
    """handler500: a database failure outside a view is a 503 too; anything else gets
    Django's plain 500 page."""
    response = database_error_response(request, sys.exc_info()[1])
    return response if response is not None else default_server_error(request, *args, **kwargs)
