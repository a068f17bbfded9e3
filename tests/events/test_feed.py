"""GET /api/v1/events/ (cursor = seq) and /api/v1/events/stream/ (Server-Sent Events,
Last-Event-ID resume, a bounded number of streams per process), both showing only the
events of projects the caller can see; /readyz reports the outbox lag."""

from __future__ import annotations

import json

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from rest_framework.test import APIClient

from events import outbox
from events.api import views as event_views
from stories import services
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db
HIDDEN = "zqxhidden"


@pytest.fixture
def two_projects(owner, member):
    """plan-pipe (member's) and a hidden project linked to it both ways."""
    other_owner = UserFactory(username=f"{HIDDEN}-alice")
    hidden = ProjectFactory(slug=f"{HIDDEN}-a", name=f"{HIDDEN} project", actor=other_owner)
    MemberFactory(project=hidden, user=owner, role="viewer", actor=other_owner)  # the link needs a role there
    secret = StoryFactory(project=hidden, key="ZQXHIDDEN-1", title=f"{HIDDEN} story", actor=other_owner)
    mine = StoryFactory(project=hidden.__class__.objects.get(slug="plan-pipe"), key="MY-1", title="Mine", actor=owner)
    services.story_transition(actor=other_owner, story=secret, status="ready", notes=f"{HIDDEN} note")
    services.dependency_add(actor=owner, story=mine, depends_on=secret)  # plan-pipe's row, names A's story
    outbox.sequence_pending()
    return mine, secret


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _sse(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append({"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])})
    return events


def test_the_feed_pages_by_seq_and_shows_only_visible_projects(two_projects, member):
    client = _client(member)
    first = client.get("/api/v1/events/?page_size=2")
    assert first.status_code == 200
    body = first.json()
    assert len(body["results"]) == 2 and body["next"] == str(body["results"][-1]["seq"])
    seen, cursor = [], "0"
    while True:
        page = client.get(f"/api/v1/events/?cursor={cursor}&page_size=2").json()
        if not page["results"]:
            break
        seen += page["results"]
        cursor = page["next"]
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    text = json.dumps(seen).lower()
    assert HIDDEN not in text
    assert {e["data"]["project"] for e in seen} == {"plan-pipe"}
    [link] = [e for e in seen if e["type"] == "dependency.added"]
    assert link["data"]["details"]["depends_on"] == "(hidden)" and link["data"]["details"]["story"] == "plan-pipe:MY-1"
    assert not [e for e in seen if e["type"] == "story.status_changed"]  # the hidden project's
    # the superuser sees the hidden project's events too
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    everything = _client(root).get("/api/v1/events/?page_size=500").json()["results"]
    assert any(e["type"] == "story.status_changed" and e["data"]["project"] == f"{HIDDEN}-a" for e in everything)
    assert len(everything) > len(seen)


def test_the_feed_refuses_bad_cursors_and_hidden_project_filters(two_projects, member):
    client = _client(member)
    assert client.get("/api/v1/events/?cursor=x").status_code == 400
    assert client.get(f"/api/v1/events/?project={HIDDEN}-a").status_code == 400
    assert client.get("/api/v1/events/?project=plan-pipe").status_code == 200
    assert APIClient().get("/api/v1/events/").status_code == 401


def test_the_stream_resumes_after_last_event_id(story, two_projects, member, owner):
    client = _client(member)
    response = client.get("/api/v1/events/stream/", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = _sse(response)
    assert events and all(e["data"]["project"] == "plan-pipe" for e in events)
    last = events[-1]["id"]
    services.story_transition(actor=owner, story=story, status="ready")
    outbox.sequence_pending()
    resumed = _sse(client.get("/api/v1/events/stream/", HTTP_LAST_EVENT_ID=str(last)))
    assert [e["type"] for e in resumed] == ["story.status_changed"] and resumed[0]["id"] > last
    assert HIDDEN not in json.dumps(events + resumed).lower()


def test_streams_beyond_the_limit_get_503_with_retry_after(settings, member):
    settings.EVENTS_SSE_MAX_STREAMS = 1
    client = _client(member)
    held = client.get("/api/v1/events/stream/")  # not read yet: holds the slot
    busy = client.get("/api/v1/events/stream/")
    assert busy.status_code == 503 and busy["Retry-After"] == "5" and busy.json()["code"] == "streams_busy"
    request_finished.disconnect(close_old_connections)  # as the test client does while it closes
    try:
        held.close()  # what the server does when the client goes, before reading anything
    finally:
        request_finished.connect(close_old_connections)
    assert event_views._streams_open == 0
    again = client.get("/api/v1/events/stream/")
    assert again.status_code == 200
    b"".join(again.streaming_content)
    assert event_views._streams_open == 0


def test_readyz_reports_the_outbox_lag(client, story, owner):
    services.story_transition(actor=owner, story=story, status="ready")
    body = client.get("/readyz").json()
    assert body["status"] == "ok" and body["outbox"]["unsequenced_events"] >= 1
    assert body["outbox"]["lag_seconds"] >= 0
    outbox.sequence_pending()
    outbox.fan_out()
    body = client.get("/readyz").json()
    assert body["outbox"]["unsequenced_events"] == 0 and body["outbox"]["unpublished_events"] == 0
