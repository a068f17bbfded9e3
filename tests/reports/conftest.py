"""A small project whose every figure is computed by hand in the tests (see the table in
test_figures.py). Time is controlled: each write happens at a given moment (`at`), so
status_history, audit rows and stories carry the timestamps the tests reason about.

Built once per module inside a transaction that is rolled back at the end."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from unittest import mock

import pytest
from django.db import transaction

from audit.models import AuditLog
from stories import services
from stories.models import Backlog, StatusHistory, Story
from tests.factories import MemberFactory, ProjectFactory, UserFactory

MARKER = "zqxhidden"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@contextmanager
def at(moment: datetime):
    """Every write inside happens at `moment` (the model defaults and timezone.now)."""
    fields = [
        StatusHistory._meta.get_field("changed_at"),
        AuditLog._meta.get_field("timestamp"),
        Story._meta.get_field("created_at"),
        Story._meta.get_field("updated_at"),
    ]
    saved = [f.__dict__.get("_get_default") for f in fields]
    for f in fields:
        f.__dict__["_get_default"] = lambda: moment  # Field caches its default callable here
    try:
        with mock.patch("django.utils.timezone.now", return_value=moment):
            yield
    finally:
        for f, old in zip(fields, saved, strict=True):
            if old is None:
                f.__dict__.pop("_get_default", None)
            else:
                f.__dict__["_get_default"] = old


@dataclass
class ReportWorld:
    project: object
    other: object
    secret: object
    sprint: Backlog
    empty_sprint: Backlog
    viewer: object
    stories: dict


def _story(project, key, estimate, when, **fields):
    with at(when):
        return services.story_create(
            actor=None, project=project, key=key, title=f"Title of {key}", estimate=estimate, **fields
        )


def _move(story, status, when):
    with at(when):
        return services.story_transition(actor=None, story=Story.objects.get(pk=story.pk), status=status)


def build_report_world() -> ReportWorld:
    with at(utc(2, 1)):
        project = ProjectFactory(slug="rep", name="Reports project")
        other = ProjectFactory(slug="oth", name="Other project")
        secret = ProjectFactory(slug=f"{MARKER}-secret", name=f"{MARKER} secret")
        epic = services.epic_create(actor=None, project=project, slug="e1", name="Epic one")
        sprint = services.backlog_create(
            actor=None,
            project=project,
            slug="s1",
            name="Sprint 1",
            type="sprint",
            starts_on=date(2026, 3, 2),
            ends_on=date(2026, 3, 6),
        )
        empty = services.backlog_create(
            actor=None,
            project=project,
            slug="s2",
            name="Sprint 2",
            type="sprint",
            starts_on=date(2026, 3, 9),
            ends_on=date(2026, 3, 13),
        )
    a = _story(project, "A", "3sp", utc(2, 23, 9), epic=epic)
    _move(a, "in_progress", utc(2, 24, 9))
    _move(a, "done", utc(2, 26, 9))
    e = _story(project, "E", "8sp", utc(2, 27, 9), backlog=sprint)
    b = _story(project, "B", "5sp", utc(3, 1, 10), epic=epic, backlog=sprint)
    c = _story(project, "C", "1-2sp", utc(3, 1, 12), epic=epic)
    d = _story(project, "D", "1sp", utc(3, 1, 8))
    _move(b, "in_progress", utc(3, 2, 10))
    _move(b, "done", utc(3, 3, 10))
    with at(utc(3, 3, 12)):  # scope added mid-sprint
        services.story_move(actor=None, story=Story.objects.get(pk=c.pk), backlog=sprint)
    with at(utc(3, 4, 9)):  # scope removed mid-sprint
        services.story_move(actor=None, story=Story.objects.get(pk=e.pk), backlog=None)
    _move(b, "in_progress", utc(3, 4, 10))  # reopened
    _move(c, "in_progress", utc(3, 4, 8))
    _move(b, "done", utc(3, 5, 10))
    _move(d, "done", utc(3, 8, 23, 30))  # Monday 00:30 in Berlin, Sunday in UTC

    # Cross-project links: O* in a project the viewer sees, H* in one it does not.
    with at(utc(2, 2)):
        o1, o2, o3 = (
            services.story_create(actor=None, project=other, key=f"O{i}", title=f"Other {i}") for i in (1, 2, 3)
        )
        h1, h3, h4 = (
            services.story_create(actor=None, project=secret, key=f"{MARKER.upper()}-{i}", title=f"{MARKER} {i}")
            for i in (1, 3, 4)
        )
        services.story_transition(actor=None, story=o1, status="in_progress")
        services.story_transition(actor=None, story=o2, status="done")
    with at(utc(3, 9)):
        for story, target in ((c, o1), (a, o2), (c, h1), (h3, a), (h4, a), (o3, c)):
            services.dependency_add(
                actor=None, story=Story.objects.get(pk=story.pk), depends_on=Story.objects.get(pk=target.pk)
            )
    viewer = UserFactory(username="rep-viewer")
    MemberFactory(project=project, user=viewer, role="viewer")
    MemberFactory(project=other, user=viewer, role="viewer")
    return ReportWorld(project, other, secret, sprint, empty, viewer, {"A": a, "B": b, "C": c, "D": d, "E": e})


@pytest.fixture(scope="module")
def rw(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build_report_world()
        except BaseException:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)
