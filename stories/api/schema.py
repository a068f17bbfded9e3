"""OpenAPI tweaks: the Bearer key scheme, stable operation ids from the path, and the
shared error shape documented on every operation."""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from .serializers import ErrorSerializer

ERRORS = {
    "400": "Validation error, malformed JSON, unknown field or bad query parameter.",
    "401": "Not authenticated (missing, unknown, expired or revoked API key).",
    "403": "The caller's role (or a read-only key) does not allow this.",
    "404": "Not found, or in a project the caller is not a member of.",
    "409": "Conflict: stale version, dependency cycle, invalid transition or blocked story.",
    "412": "If-Match named a version that is no longer current.",
    "413": "Request body too large.",
    "429": "Rate limited; see Retry-After.",
}
WRITE_ONLY = {"409", "412", "413"}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sessions_app.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"}


class StoryHubAutoSchema(AutoSchema):
    def get_operation_id(self):
        path = re.sub(r"^/api/v1/", "", self.path).strip("/")
        path = re.sub(r"\{[^}]+\}", "by", path)
        words = [w for w in re.split(r"[/_-]+", path) if w]
        return "_".join([*words, self.method.lower()])

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        from .serializers import StrictSerializer

        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        error_ref = self.resolve_serializer(ErrorSerializer, "response").ref
        for code, description in ERRORS.items():
            if code in WRITE_ONLY and self.method in ("GET", "HEAD"):
                continue
            operation["responses"].setdefault(
                code, {"description": description, "content": {"application/json": {"schema": error_ref}}}
            )
        return operation
