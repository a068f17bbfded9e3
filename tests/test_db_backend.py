"""storyhub.db.postgresql: Django's backend with psycopg's C timestamptz loader."""

import datetime

import pytest
from django.db import connection
from psycopg.types.datetime import TimestamptzLoader

from audit.models import AuditLog
from stories.models import Story

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_timestamptz_loads_as_aware_utc_through_the_c_loader(make_story):
    story = make_story("TZ-1")
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(1184, 0)  # timestamptz, text format
        assert loader.__module__.startswith("psycopg_") and loader.__name__ == TimestamptzLoader.__name__
        cursor.execute("SELECT TIMESTAMPTZ '2025-08-28 12:30:01.5+02'")
        (value,) = cursor.fetchone()
    assert value == datetime.datetime(2025, 8, 28, 10, 30, 1, 500000, tzinfo=datetime.UTC)
    assert value.tzinfo is datetime.UTC
    loaded = Story.objects.values_list("created_at", flat=True).get(pk=story.pk)
    assert loaded == story.created_at and loaded.tzinfo is datetime.UTC


def test_server_side_cursors_still_work(make_story):
    # QuerySet.iterator() reads through a named (server-side) cursor on PostgreSQL.
    for i in range(5):
        make_story(f"IT-{i}")
    got = list(Story.objects.order_by("key").values_list("key", "created_at").iterator(chunk_size=2))
    assert [k for k, _ in got] == [f"IT-{i}" for i in range(5)]
    assert all(ts.tzinfo is datetime.UTC for _, ts in got)
    assert AuditLog.objects.filter(timestamp__lte=datetime.datetime.now(datetime.UTC)).exists()
