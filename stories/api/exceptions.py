"""The one DRF exception handler: every error becomes
{"code": ..., "message": ..., "details": {field: [reasons]}} with a stable code."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from storyhub.errors import ApplicationError

_CODES = {
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "validation_error",
}


def _as_details(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for field, value in detail.items():
            if isinstance(value, dict):
                for sub, reasons in _as_details(value).items():
                    out[f"{field}.{sub}"] = reasons
            elif isinstance(value, list):
                flat: list[str] = []
                for item in value:
                    if isinstance(item, dict):
                        for sub, reasons in _as_details(item).items():
                            out[f"{field}.{sub}"] = reasons
                    else:
                        flat.append(str(item))
                if flat:
                    out[str(field)] = flat
            else:
                out[str(field)] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(x) for x in detail]}
    return {}


def error_response(code: str, message: str, http_status: int, details=None, extra=None, headers=None) -> Response:
    body = {"code": code, "message": message, "details": details or {}}
    if extra:
        body.update(extra)
    return Response(body, status=http_status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        from .throttling import throttle_failed_authentication

        exc = throttle_failed_authentication(context.get("request"), context.get("view")) or exc
    if isinstance(exc, ApplicationError):
        etag = getattr(exc, "etag", None)  # a 412 names the current ETag
        headers = {"ETag": etag} if etag else None
        return error_response(exc.code, exc.message, exc.http_status, exc.details, exc.extra, headers=headers)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        details = {("non_field_errors" if k == "__all__" else k): v for k, v in details.items()}
        return error_response("validation_error", "The request is not valid.", 400, details)
    if isinstance(exc, DjangoPermissionDenied):
        return error_response("permission_denied", str(exc) or "Permission denied.", 403)
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", 404)
    if isinstance(exc, RequestDataTooBig):
        return error_response("request_too_large", "The request body is too large.", 413)
    if isinstance(exc, DataError):
        # Input the database cannot store (e.g. a NUL character inside a JSON value, which
        # PostgreSQL's jsonb refuses); the write's transaction was already rolled back.
        return error_response(
            "validation_error",
            "The request is not valid.",
            400,
            {"non_field_errors": ["Unstorable value (e.g. a NUL character)."]},
        )
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), exc.default_code)
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.ValidationError):
            return error_response(code, "The request is not valid.", 400, _as_details(exc.detail), headers=headers)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        return error_response(code, str(message), exc.status_code, headers=headers)
    return None


_ = status


def api_not_found(request, exception=None):
    """handler404: an /api/ URL that matches no route (e.g. a non-integer id) gets the API's
    JSON error shape, as documented in the schema, instead of Django's HTML page."""
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse({"code": "not_found", "message": "Not found.", "details": {}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
