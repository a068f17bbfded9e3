"""Which events a reader may see, and how: the audit rule (audit.selectors, on top of
stories.rules / stories.selectors). An event belongs to the project of its audit row; a
link between two projects is seen by the readers of either side, with the side they
cannot see as "(hidden)"; events about no project (users, keys, sessions) are read by
superusers and auditors only. A webhook endpoint of project P reads as a reader of P
alone; a global endpoint reads everything."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from audit.events import LINK_ENTITY_TYPES
from audit.models import OutboxEvent
from audit.selectors import HIDDEN, audit_details_for, audit_visible_project_ids
from stories.models import Project

from .models import Delivery, WebhookEndpoint

# Details that are the envelope's, not the action's.
_ENVELOPE = ("source", "request_id", "changes", "linked_project_id", "api_key_id")


def visible_q(visible: set[int] | None) -> Q:
    """Events readable with project ids `visible` (None: all)."""
    if visible is None:
        return Q()
    ids = sorted(visible)
    return Q(project_id__in=ids) | Q(entity_type__in=LINK_ENTITY_TYPES, linked_project_id__in=ids)


def event_feed_for(*, user, after: int = 0, project: Project | None = None) -> QuerySet[OutboxEvent]:
    """Sequenced events after `after` that `user` may read, in sequence order."""
    visible = audit_visible_project_ids(user)
    rows = OutboxEvent.objects.filter(seq__gt=after).filter(visible_q(visible)).order_by("seq")
    if project is not None:
        if visible is not None and project.pk not in visible:
            return rows.none()
        rows = rows.filter(visible_q({project.pk}))
    return rows


def endpoint_visible_projects(endpoint: WebhookEndpoint) -> set[int] | None:
    return None if endpoint.project_id is None else {endpoint.project_id}


def endpoint_wants(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    """`endpoint` subscribes to `event`: its filter names the type (or its namespace
    "story.*", or nothing at all) and it may read the event."""
    if endpoint.event_types and not any(
        event.type == name or (name.endswith(".*") and event.type.startswith(name[:-1]))
        for name in endpoint.event_types
    ):
        return False
    if endpoint.project_id is None:
        return True
    if event.project_id == endpoint.project_id:
        return True
    return event.entity_type in LINK_ENTITY_TYPES and event.linked_project_id == endpoint.project_id


def project_slugs(events: Iterable[OutboxEvent]) -> dict[int, str]:
    ids = {e.project_id for e in events if e.project_id is not None}
    return dict(Project.objects.filter(pk__in=ids).values_list("pk", "slug"))


def event_payload(event: OutboxEvent, *, visible: set[int] | None, slugs: dict[int, str]) -> dict[str, Any]:
    """The public shape of an event (feed, stream and webhook body) as a reader with
    project ids `visible` (None: all) may see it."""
    details = audit_details_for(
        user=None,
        row={"entity_type": event.entity_type, "project_id": event.project_id, "details": event.data},
        visible=visible,
    )
    project: str | None = None
    if event.project_id is not None:
        seen = visible is None or event.project_id in visible
        project = slugs.get(event.project_id) if seen else HIDDEN
    return {
        "seq": event.seq,
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": {
            "project": project,
            "entity_type": event.entity_type,
            "entity_id": event.entity_id if project != HIDDEN else None,
            "actor": event.actor_repr or None,
            "source": details.get("source"),
            "request_id": event.request_id or None,
            "changes": details.get("changes", {}),
            "details": {k: v for k, v in details.items() if k not in _ENVELOPE},
        },
    }


def endpoints_for(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project).order_by("id")


def deliveries_for(*, endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    return Delivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log").order_by("-id")


def sees_every_event(user) -> bool:
    """Superusers and auditors read every event (the audit rule)."""
    return audit_visible_project_ids(user) is None


def outbox_list_for(*, user) -> QuerySet[OutboxEvent]:
    """Every outbox row (sequenced or not) `user` may read, for the admin."""
    return OutboxEvent.objects.filter(visible_q(audit_visible_project_ids(user)))
