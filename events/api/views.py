"""/api/v1/events/ (cursor feed), /api/v1/events/stream/ (Server-Sent Events) and a
project's webhook endpoints, their delivery log, redeliveries and test pings. Reads
of events go through events.selectors (the audit visibility rule); endpoints are
managed by the project's admins (the services check again)."""

from __future__ import annotations

import json
import threading
import time

from django.conf import settings
from django.db import connection
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.selectors import audit_visible_project_ids
from events import selectors, services
from events.models import Delivery, WebhookEndpoint
from stories import selectors as story_selectors
from stories.api.permissions import get_project_for, require_role
from stories.api.renderers import ORJSONRenderer
from stories.api.serializers import ErrorSerializer, ServiceUnavailableErrorSerializer, StrictSerializer
from stories.api.views import validated
from stories.rules import has_project_role

MAX_PAGE_SIZE = 500


# --------------------------------------------------------------------------- the feed


class EventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    data = serializers.DictField()


class EventPageOut(serializers.Serializer):
    next = serializers.CharField(help_text="the cursor of the next page (the last seq of this one)")
    results = EventOut(many=True)


def _after(request) -> int:
    raw = request.query_params.get("cursor") or request.headers.get("Last-Event-ID") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({"cursor": ["Give the seq of the last event you saw (a whole number)."]}) from None
    if value < 0:
        raise ValidationError({"cursor": ["Give a seq of 0 or more."]})
    return value


def _page_size(request) -> int:
    raw = request.query_params.get("page_size", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"Give a number from 1 to {MAX_PAGE_SIZE}."]})
    return int(raw)


def _project(request):
    slug = request.query_params.get("project")
    if not slug:
        return None
    project = story_selectors.project_list_for_user(user=request.user).filter(slug=slug).first()
    if project is None:
        raise ValidationError({"project": [f"No project '{slug}' that you can see."]})
    return project


def _page(request, *, after: int, project, size: int) -> list[dict]:
    rows = list(selectors.event_feed_for(user=request.user, after=after, project=project)[:size])
    visible = audit_visible_project_ids(request.user)
    slugs = selectors.project_slugs(rows)
    return [selectors.event_payload(row, visible=visible, slugs=slugs) for row in rows]


FEED_PARAMS = [
    OpenApiParameter("cursor", OpenApiTypes.INT, description="the seq of the last event you saw (0: from the start)"),
    OpenApiParameter("project", str, description="only this project's events (slug)"),
]


class EventFeedView(APIView):
    @extend_schema(
        parameters=[*FEED_PARAMS, OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 500})],
        responses=EventPageOut,
    )
    def get(self, request):
        """Events after `cursor`, oldest first, of the projects you can see."""
        after = _after(request)
        results = _page(request, after=after, project=_project(request), size=_page_size(request))
        return Response({"next": str(results[-1]["seq"] if results else after), "results": results})


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()  # errors, before a stream starts


_streams_lock = threading.Lock()
_streams_open = 0


def _open_stream() -> bool:
    global _streams_open
    with _streams_lock:
        if _streams_open >= settings.EVENTS_SSE_MAX_STREAMS:
            return False
        _streams_open += 1
        return True


class _Stream:
    """The stream's iterator; closing it (the server does, also when the client goes)
    frees its slot, whether or not it was ever iterated."""

    def __init__(self, request, after: int, project):
        self.request, self.after, self.project = request, after, project
        self.closed = False

    def close(self):
        global _streams_open
        if not self.closed:
            self.closed = True
            with _streams_lock:
                _streams_open -= 1

    def __iter__(self):
        deadline = time.monotonic() + settings.EVENTS_SSE_MAX_SECONDS
        last, quiet_since = self.after, time.monotonic()
        yield f"retry: 1000\n: events after {last}\n\n"
        try:
            while not self.closed:
                for event in _page(self.request, after=last, project=self.project, size=100):
                    last = event["seq"]
                    quiet_since = time.monotonic()
                    yield f"id: {last}\nevent: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
                if not connection.in_atomic_block:
                    connection.close()  # hand the connection back (to the pool) between polls
                if time.monotonic() >= deadline:
                    yield ": stream lifetime reached; reconnect with Last-Event-ID\n\n"
                    return
                if time.monotonic() - quiet_since > 15:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                time.sleep(settings.EVENTS_SSE_POLL_SECONDS)
        finally:
            self.close()


STREAM_RETRY_AFTER = 5  # seconds, in the header and the body


class StreamsBusyErrorSerializer(ErrorSerializer):
    """503 from the event stream: every stream slot of this server process is taken;
    retry after `retry_after` seconds (also the Retry-After header)."""

    code = serializers.ChoiceField(choices=["streams_busy"])
    retry_after = serializers.IntegerField()


class EventStreamView(APIView):
    renderer_classes = [ORJSONRenderer, EventStreamRenderer]

    @extend_schema(
        parameters=[
            *FEED_PARAMS,
            OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER, description="resume after this seq"),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="`id: <seq>`, `event: <type>`, `data: <event JSON>` per event"
            ),
            (503, "application/json"): OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="EventStreamUnavailableError",
                    serializers=[ServiceUnavailableErrorSerializer, StreamsBusyErrorSerializer],
                    resource_type_field_name="code",
                ),
                description="every stream slot of this server process is taken (streams_busy), or the "
                "database is unavailable; retry after Retry-After",
            ),
        },
    )
    def get(self, request):
        """The events of the projects you can see as Server-Sent Events, live."""
        after, project = _after(request), _project(request)
        if not _open_stream():
            return Response(
                {
                    "code": "streams_busy",
                    "message": "Too many open event streams; retry shortly.",
                    "details": {},
                    "retry_after": STREAM_RETRY_AFTER,
                },
                status=http.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(STREAM_RETRY_AFTER)},
            )
        stream = _Stream(request, after, project)
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response


# --------------------------------------------------------------------------- webhooks


class EndpointOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    secret_prefix = serializers.CharField(help_text="the first characters of the signing secret")
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class EndpointCreatedOut(EndpointOut):
    secret = serializers.CharField(help_text="the signing secret, shown this once")


class EndpointInput(StrictSerializer):
    url = serializers.URLField(max_length=2000)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(), required=False)


class EndpointPatch(StrictSerializer):
    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(), required=False)
    active = serializers.BooleanField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    manual = serializers.BooleanField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    ok = serializers.BooleanField()
    error = serializers.CharField()
    response_excerpt = serializers.CharField()


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.CharField()
    kind = serializers.CharField()
    event_type = serializers.CharField()
    seq = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    attempt_log = AttemptOut(many=True)


class Empty(StrictSerializer):
    pass


def endpoint_payload(endpoint: WebhookEndpoint) -> dict:
    return {name: getattr(endpoint, name) for name in EndpointOut().fields}


def delivery_payload(delivery: Delivery) -> dict:
    out = {name: getattr(delivery, name) for name in DeliveryOut().fields if name != "attempt_log"}
    out["attempt_log"] = [{name: getattr(a, name) for name in AttemptOut().fields} for a in delivery.attempt_log.all()]
    return out


def _admin_project(request, slug):
    """The project, for its admins: reads need the role (a read-only key of an admin
    reads), writes also a key that may write."""
    project = get_project_for(request, slug)
    if request.method in SAFE_METHODS:
        if not has_project_role(request.user, project, "admin"):
            raise PermissionDenied(f"This needs the 'admin' role in project '{project.slug}'.")
    else:
        require_role(request, project, "admin")
    return project


def _endpoint(request, slug, webhook_id) -> WebhookEndpoint:
    project = _admin_project(request, slug)
    endpoint = selectors.endpoints_for(project=project).filter(pk=webhook_id).select_related("project").first()
    if endpoint is None:
        raise Http404
    return endpoint


class WebhookListView(APIView):
    @extend_schema(responses=EndpointOut(many=True))
    def get(self, request, slug):
        """The project's webhook endpoints (project admins)."""
        project = _admin_project(request, slug)
        return Response([endpoint_payload(e) for e in selectors.endpoints_for(project=project)])

    @extend_schema(request=EndpointInput, responses={201: EndpointCreatedOut})
    def post(self, request, slug):
        """A new endpoint; the answer holds its signing secret, shown this once."""
        project = _admin_project(request, slug)
        data = validated(EndpointInput, request.data)
        endpoint, secret = services.endpoint_create(actor=request.user, project=project, **data)
        return Response({**endpoint_payload(endpoint), "secret": secret}, status=http.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(responses=EndpointOut)
    def get(self, request, slug, webhook_id):
        return Response(endpoint_payload(_endpoint(request, slug, webhook_id)))

    @extend_schema(request=EndpointPatch, responses=EndpointOut)
    def patch(self, request, slug, webhook_id):
        """Change the URL, description, event types, or turn it off / back on."""
        endpoint = _endpoint(request, slug, webhook_id)
        data = validated(EndpointPatch, request.data)
        version = data.pop("version", None)
        endpoint = services.endpoint_update(actor=request.user, endpoint=endpoint, data=data, expected_version=version)
        return Response(endpoint_payload(endpoint))

    @extend_schema(responses={204: None})
    def delete(self, request, slug, webhook_id):
        services.endpoint_delete(actor=request.user, endpoint=_endpoint(request, slug, webhook_id))
        return Response(status=http.HTTP_204_NO_CONTENT)


class WebhookDeliveryListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 200})],
        responses=DeliveryOut(many=True),
    )
    def get(self, request, slug, webhook_id):
        """The delivery log, newest first, each with its attempts."""
        endpoint = _endpoint(request, slug, webhook_id)
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 200:
            raise ValidationError({"limit": ["Give a number from 1 to 200."]})
        rows = selectors.deliveries_for(endpoint=endpoint)[: int(raw)]
        return Response([delivery_payload(d) for d in rows])


class WebhookRedeliverView(APIView):
    @extend_schema(request=Empty, responses={202: DeliveryOut})
    def post(self, request, slug, webhook_id, delivery_id):
        """Send a delivery again now (the worker makes the attempt)."""
        endpoint = _endpoint(request, slug, webhook_id)
        validated(Empty, request.data)
        delivery = selectors.deliveries_for(endpoint=endpoint).filter(pk=delivery_id).first()
        if delivery is None:
            raise Http404
        services.delivery_redeliver(actor=request.user, delivery=delivery)
        return Response(delivery_payload(delivery), status=http.HTTP_202_ACCEPTED)


class WebhookPingView(APIView):
    @extend_schema(request=Empty, responses={202: DeliveryOut})
    def post(self, request, slug, webhook_id):
        """Send a signed test message ("webhook.ping") now."""
        endpoint = _endpoint(request, slug, webhook_id)
        validated(Empty, request.data)
        ping = services.endpoint_ping(actor=request.user, endpoint=endpoint)
        return Response(delivery_payload(ping), status=http.HTTP_202_ACCEPTED)
