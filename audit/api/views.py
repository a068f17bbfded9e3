"""GET /api/v1/audit/: read-only audit rows of the projects the caller can see
(superusers: all). A row belongs to a project through details["project"] (the slug
the services record) or, for project rows, through its entity id; rows about no
project (sessions, API keys, users) are shown to superusers only."""

from __future__ import annotations

import base64
import binascii

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from stories import selectors

MAX_PAGE_SIZE = 200


class AuditRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    entity_type = serializers.CharField()
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


def visible_audit_rows(user):
    rows = AuditLog.objects.all()
    if user.is_superuser:
        return rows
    projects = list(selectors.project_list_for_user(user=user).values_list("pk", "slug"))
    return rows.filter(
        Q(details__project__in=[slug for _, slug in projects])
        | Q(entity_type="project", entity_id__in=[str(pk) for pk, _ in projects])
    )


class AuditListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("entity_type", str),
            OpenApiParameter("entity_id", str),
            OpenApiParameter("action", str),
            OpenApiParameter("user", str, description="username"),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
            OpenApiParameter("cursor", str),
        ],
        responses=AuditPageOut,
    )
    def get(self, request):
        rows = visible_audit_rows(request.user)
        for name in ("entity_type", "entity_id", "action"):
            value = request.query_params.get(name)
            if value:
                rows = rows.filter(**{name: value})
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
                "id", "action", "entity_type", "entity_id", "user_repr", "timestamp", "details"
            )[: size + 1]
        )
        more = len(page) > size
        page = page[:size]
        return Response(
            {
                "next": base64.urlsafe_b64encode(str(page[-1]["id"]).encode()).decode().rstrip("=") if more else None,
                "results": [{**{k: v for k, v in r.items() if k != "user_repr"}, "user": r["user_repr"]} for r in page],
            }
        )
