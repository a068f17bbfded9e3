"""GET /api/v1/audit/: read-only audit rows of the projects the caller can see, as
audit.selectors decides (by immutable project id; superusers and auditors: all). The
action and entity_type filters take only the names registered in audit.events."""

from __future__ import annotations

import base64
import binascii

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.events import AuditAction, EntityType
from audit.selectors import audit_list_for, audit_rows_redacted
from stories import selectors

MAX_PAGE_SIZE = 200


class AuditRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=[member.value for member in AuditAction])
    entity_type = serializers.ChoiceField(choices=[member.value for member in EntityType])
    entity_id = serializers.CharField()
    user = serializers.CharField()
    timestamp = serializers.DateTimeField()
    details = serializers.DictField()


class AuditPageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = AuditRowOut(many=True)


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["Give a whole number."]}) from None
    if not low <= value <= high:
        raise ValidationError({name: [f"Give a number from {low} to {high}."]})
    return value


def _time_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: ["Give an ISO 8601 date-time, e.g. 2025-08-28T12:00:00Z."]})
    return value


# Filters whose values come from the registry (audit.events).
REGISTERED = {"action": AuditAction, "entity_type": EntityType}


def _registered_param(request, name: str) -> str | None:
    value = request.query_params.get(name)
    if not value:
        return None
    known = [member.value for member in REGISTERED[name]]
    if value not in known:
        raise ValidationError({name: [f"Unknown {name} '{value}'. Known values: {', '.join(known)}."]})
    return value


def _project_param(request):
    slug = request.query_params.get("project")
    if not slug:
        return None
    project = selectors.project_list_for_user(user=request.user).filter(slug=slug).first()
    if project is None:
        # Not found and not visible answer the same, so slugs cannot be probed.
        raise ValidationError({"project": [f"No project '{slug}' that you can see."]})
    return project


class AuditListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "project", str, description="project slug: the rows of the project that holds this slug now"
            ),
            OpenApiParameter("entity_type", str, enum=[member.value for member in EntityType]),
            OpenApiParameter("entity_id", str),
            OpenApiParameter("action", str, enum=[member.value for member in AuditAction]),
            OpenApiParameter("user", str, description="username"),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
            OpenApiParameter("cursor", str),
        ],
        responses=AuditPageOut,
    )
    def get(self, request):
        rows = audit_list_for(user=request.user, project=_project_param(request))
        for name in ("entity_type", "action"):
            value = _registered_param(request, name)
            if value:
                rows = rows.filter(**{name: value})
        if request.query_params.get("entity_id"):
            rows = rows.filter(entity_id=request.query_params["entity_id"])
        if request.query_params.get("user"):
            rows = rows.filter(user_repr=request.query_params["user"])
        since, until = _time_param(request, "since"), _time_param(request, "until")
        if since:
            rows = rows.filter(timestamp__gte=since)
        if until:
            rows = rows.filter(timestamp__lt=until)
        size = _int_param(request, "page_size", 50, 1, MAX_PAGE_SIZE)
        cursor = request.query_params.get("cursor")
        if cursor:
            try:
                last_id = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationError({"cursor": ["Invalid cursor."]}) from None
            rows = rows.filter(id__lt=last_id)
        page = list(
            rows.order_by("-id").values(
                "id", "action", "entity_type", "entity_id", "project_id", "user_repr", "timestamp", "details"
            )[: size + 1]
        )
        more = len(page) > size
        page = page[:size]
        shown = audit_rows_redacted(user=request.user, rows=page)
        return Response(
            {
                "next": base64.urlsafe_b64encode(str(shown[-1]["id"]).encode()).decode().rstrip("=") if more else None,
                "results": [
                    {**{k: v for k, v in r.items() if k not in ("user_repr", "project_id")}, "user": r["user_repr"]}
                    for r in shown
                ],
            }
        )
