"""The reports over HTTP: JSON and CSV, clear 400s, 404 for what the caller cannot see,
and a query count that does not grow with the project."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from stories import services
from stories.models import Story

from .conftest import MARKER, at, utc

pytestmark = pytest.mark.django_db

RANGE = "from=2026-02-23&to=2026-03-10"
REPORTS = [
    "velocity",
    "cumulative-flow",
    "cycle-time",
    "lead-time",
    "throughput",
    "ageing-wip",
    "epic-progress",
    "cross-project",
]


@pytest.fixture
def client(rw):
    api = APIClient()
    api.force_authenticate(rw.viewer)
    return api


def url(name: str, query: str = RANGE) -> str:
    return f"/api/v1/projects/rep/reports/{name}/?{query}"


@pytest.mark.parametrize("name", [*REPORTS, "burndown/s1", "burnup/s1"])
def test_every_report_as_json_and_csv(client, name):
    response = client.get(url(name))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["project"] == "rep" and body["rows"] is not None
    as_csv = client.get(url(name + "/csv"))
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(as_csv.content.decode())))
    assert table[0] == body["columns"] and len(table) == len(body["rows"]) + 1
    assert MARKER not in response.content.decode().lower() + as_csv.content.decode().lower()


def test_velocity_json_figures_and_period(client):
    body = client.get(url("velocity")).json()
    assert [r["net_points"] for r in body["rows"]] == [3, 6, 0]
    assert client.get(url("velocity", RANGE + "&period=sprint")).json()["period"] == "sprint"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tz=Nowhere/City", "tz"),
        ("from=yesterday", "from"),
        ("from=2026-03-05&to=2026-03-01", "from"),
        ("from=2023-01-01&to=2026-01-01", "to"),
        (RANGE + "&period=month", "period"),
    ],
)
def test_bad_parameters_are_clear_400s(client, query, field):
    response = client.get(url("velocity", query))
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error" and field in response.json()["details"]


def test_bad_parameters_answer_json_even_when_csv_was_asked(client):
    response = client.get(url("throughput/csv", "tz=Nowhere/City"))
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")


def test_burndown_of_a_backlog_that_is_not_a_sprint(client, rw):
    with at(utc(3, 1)):
        services.backlog_create(actor=None, project=rw.project, slug="plain", name="Plain")
    response = client.get(url("burndown/plain"))
    assert response.status_code == 400 and "sprint" in response.json()["details"]["backlog"][0]
    assert client.get(url("burndown/nope")).status_code == 404


def test_a_project_the_caller_cannot_see_is_404(client, rw):
    assert client.get(f"/api/v1/projects/{rw.secret.slug}/reports/velocity/").status_code == 404
    anonymous = APIClient()
    assert anonymous.get(url("velocity")).status_code == 401


# Queries of each report's request (the project's lookup included). The hand-written
# reads on PostgreSQL add one statement each (selectors._report_cursor: SET LOCAL jit).
QUERIES = {
    "velocity": (2, 1),
    "velocity-sprint": (3, 1),
    "cumulative-flow": (2, 1),
    "cycle-time": (2, 0),
    "lead-time": (2, 0),
    "throughput": (2, 1),
    "ageing-wip": (2, 0),
    "epic-progress": (3, 0),
    "cross-project": (3, 1),
    "burndown/s1": (5, 0),
    "burnup/s1": (5, 0),
}


@pytest.mark.parametrize("name", QUERIES)
def test_query_count_does_not_grow_with_the_project(client, rw, name):
    path = url("velocity", RANGE + "&period=sprint") if name == "velocity-sprint" else url(name)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    base, hand_written = QUERIES[name]
    assert before == base + (hand_written if connection.vendor == "postgresql" else 0)
    with at(utc(3, 4, 11)):
        for i in range(6):
            story = services.story_create(
                actor=None,
                project=rw.project,
                key=f"N{i}",
                title="n",
                estimate="2sp",
                epic=rw.stories["A"].epic,
                backlog=rw.sprint,
            )
            services.story_transition(actor=None, story=Story.objects.get(pk=story.pk), status="in_progress")
            services.dependency_add(actor=None, story=Story.objects.get(pk=story.pk), depends_on=rw.stories["D"])
    with at(utc(3, 5, 11)):
        for i in range(0, 6, 2):
            services.story_transition(
                actor=None, story=Story.objects.get(project=rw.project, key=f"N{i}"), status="done"
            )
    assert count() == before


def test_sprint_dates_on_backlogs(rw):
    owner = APIClient()
    from django.contrib.auth import get_user_model

    boss = get_user_model().objects.create_superuser("rep-boss", "boss@example.com", "pw-for-tests")
    owner.force_authenticate(boss)
    base = "/api/v1/projects/rep/backlogs/"
    made = owner.post(
        base,
        {"slug": "s9", "name": "S9", "type": "sprint", "starts_on": "2026-04-01", "ends_on": "2026-04-14"},
        format="json",
    )
    assert (
        made.status_code == 201 and made.json()["starts_on"] == "2026-04-01" and made.json()["ends_on"] == "2026-04-14"
    )
    backwards = owner.patch(base + "s9/", {"ends_on": "2026-03-01"}, format="json")
    assert backwards.status_code == 400
    not_sprint = owner.post(base, {"slug": "t9", "name": "T9", "starts_on": "2026-04-01"}, format="json")
    assert not_sprint.status_code == 400 and "starts_on" in not_sprint.json()["details"]
