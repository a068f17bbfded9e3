"""Story rank: the reorder service (gapped integers, renumbering, audit) and its API
`POST stories/{key}/rank/` (versions, ETag, roles)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.models import AuditLog
from stories import services
from stories.models import STORY_RANK_ORDER, Story
from storyhub.errors import ConflictError, StaleVersionError
from tests.factories import ProjectFactory, StoryFactory


def keys(project) -> list[str]:
    return list(Story.objects.filter(project=project).order_by(*STORY_RANK_ORDER).values_list("key", flat=True))


@pytest.fixture
def five(project):
    return {k: StoryFactory(project=project, key=k) for k in ("S-1", "S-2", "S-3", "S-4", "S-5")}


def rank(owner, story, **anchors):
    return services.story_rank(actor=owner, story=Story.objects.get(pk=story.pk), **anchors)


def test_unranked_stories_follow_key_order_and_a_first_move_numbers_the_project(owner, project, five):
    assert keys(project) == ["S-1", "S-2", "S-3", "S-4", "S-5"]
    moved = rank(owner, five["S-5"], before=five["S-2"])
    assert keys(project) == ["S-1", "S-5", "S-2", "S-3", "S-4"]
    assert not Story.objects.filter(project=project, rank__isnull=True).exists()
    row = AuditLog.objects.get(action="story.ranked")
    assert row.entity_id == str(moved.pk)
    assert row.details["before"] == "S-2" and row.details["renumbered"] >= 4
    assert moved.version == five["S-5"].version + 1


def test_moves_take_the_middle_of_a_gap_and_renumber_when_there_is_none(owner, project, five):
    rank(owner, five["S-1"], after=five["S-5"])  # numbers everything: 1024 apart
    ranks_before = dict(Story.objects.filter(project=project).values_list("key", "rank"))
    for _ in range(12):  # halving a 1024 gap: runs out after ~10 moves, then renumbers
        order = keys(project)
        last, second = Story.objects.get(project=project, key=order[-1]), order[1]
        rank(owner, last, before=Story.objects.get(project=project, key=second))
        assert keys(project)[1] == last.key
    ranks = list(Story.objects.filter(project=project).order_by(*STORY_RANK_ORDER).values_list("rank", flat=True))
    assert ranks == sorted(set(ranks))  # distinct, strictly increasing
    assert ranks_before != dict(Story.objects.filter(project=project).values_list("key", "rank"))
    rows = AuditLog.objects.filter(action="story.ranked").order_by("id")
    assert rows.count() == 13
    assert any("renumbered" in r.details for r in rows[1:])  # the gap ran out at least once


def test_to_the_front_and_to_the_end(owner, project, five):
    rank(owner, five["S-3"], before=five["S-1"])
    assert keys(project)[0] == "S-3"
    rank(owner, five["S-1"], after=five["S-5"])
    assert keys(project) == ["S-3", "S-2", "S-4", "S-5", "S-1"]


def test_no_move_no_audit_row(owner, project, five):
    rank(owner, five["S-2"], after=five["S-1"])  # numbers the project
    count = AuditLog.objects.filter(action="story.ranked").count()
    story = Story.objects.get(pk=five["S-2"].pk)
    same = services.story_rank(actor=owner, story=story, after=five["S-1"])
    assert same.version == story.version
    assert AuditLog.objects.filter(action="story.ranked").count() == count


def test_refusals(owner, project, five):
    other = StoryFactory(project=ProjectFactory(slug="other", actor=owner), key="O-1")
    with pytest.raises(Exception, match="another project"):
        rank(owner, five["S-1"], before=other)
    with pytest.raises(Exception, match="itself"):
        rank(owner, five["S-1"], before=five["S-1"])
    with pytest.raises(Exception, match="before"):
        rank(owner, five["S-1"])
    with pytest.raises(ConflictError, match="next to each other"):
        rank(owner, five["S-1"], after=five["S-2"], before=five["S-4"])
    story = Story.objects.get(pk=five["S-1"].pk)
    with pytest.raises(StaleVersionError):
        services.story_rank(actor=owner, story=story, before=five["S-3"], expected_version=story.version + 1)
    assert not AuditLog.objects.filter(action="story.ranked").exists()
    # Both neighbours given and still neighbours: fine.
    rank(owner, five["S-1"], after=five["S-3"], before=five["S-4"])
    assert keys(project)[:4] == ["S-2", "S-3", "S-1", "S-4"]


# --------------------------------------------------------------------------- API


def url(project, key):
    return f"/api/v1/projects/{project.slug}/stories/{key}/rank/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_rank_with_etag_and_body_version(owner, project, five):
    client = client_for(owner)
    story = five["S-4"]
    response = client.post(url(project, "S-4"), {"before": "S-1"}, format="json", HTTP_IF_MATCH='"0-0"')
    assert response.status_code == 412, response.content
    response = client.post(
        url(project, "S-4"), {"before": "S-1"}, format="json", HTTP_IF_MATCH=f'"{story.pk}-{story.version}"'
    )
    assert response.status_code == 200, response.content
    assert response["ETag"] == f'"{story.pk}-{story.version + 1}"'
    assert keys(project)[0] == "S-4"
    stale = client.post(url(project, "S-4"), {"after": "S-5", "version": story.version}, format="json")
    assert stale.status_code == 409 and stale.json()["current_version"] == story.version + 1
    assert client.post(url(project, "S-4"), {"after": "NOPE"}, format="json").status_code == 404
    assert client.post(url(project, "S-4"), {}, format="json").status_code == 400
    assert client.post(url(project, "S-4"), {"after": "S-5", "bogus": 1}, format="json").status_code == 400


@pytest.mark.parametrize(("who", "expected"), [("viewer", 403), ("outsider", 404), ("member", 200)])
def test_api_rank_roles(request, project, five, who, expected):
    user = request.getfixturevalue(who)
    response = client_for(user).post(url(project, "S-1"), {"after": "S-2"}, format="json")
    assert response.status_code == expected, response.content


def test_api_rank_anonymous(project, five):
    assert APIClient().post(url(project, "S-1"), {"after": "S-2"}, format="json").status_code == 401
