"""Story list filters (django-filter) and keyset ordering."""

from __future__ import annotations

import datetime

import django_filters
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stories import fields
from stories.models import StatusCategory, Story

PRIORITY_BY_WORD = fields.PRIORITY_BY_WORD


class CSVCharFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    pass


class StoryFilter(django_filters.FilterSet):
    project = CSVCharFilter(field_name="project__slug", help_text="project slug(s), comma-separated")
    backlog = CSVCharFilter(field_name="backlog__slug", help_text="backlog slug(s)")
    status = CSVCharFilter(field_name="status__slug", help_text="status slug(s)")
    status_category = django_filters.MultipleChoiceFilter(
        field_name="status__category", choices=StatusCategory.choices, help_text="status category"
    )
    epic = CSVCharFilter(field_name="epic__slug", help_text="epic slug(s)")
    owner = django_filters.CharFilter(field_name="owner")
    label = django_filters.CharFilter(method="filter_label", help_text="stories carrying this label")
    priority = django_filters.MultipleChoiceFilter(
        method="filter_priority", choices=[(w, w) for w in PRIORITY_BY_WORD], help_text="priority word(s)"
    )
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Story
        fields: list[str] = []

    def filter_label(self, queryset, name, value):
        if connection.vendor == "postgresql":
            return queryset.filter(labels__contains=[value])
        # SQLite has no JSON containment; match the JSON-encoded string instead.
        import json

        return queryset.filter(labels__icontains=json.dumps(value))

    def filter_priority(self, queryset, name, value):
        return queryset.filter(priority__in=[PRIORITY_BY_WORD[w] for w in value]) if value else queryset


# ordering name -> model field
ORDERINGS = {"id": "id", "key": "key", "priority": "priority", "updated_at": "updated_at", "created_at": "created_at"}
# Whole numbers the database's BIGINT holds (SQLite raises OverflowError beyond them).
_BIGINT = range(-(2**63), 2**63)


def cursor_value(field: str, value):
    """A cursor's value for ordering `field`, as the field's type, or ValueError: a
    cursor made for another ordering (or by hand) must be a 400, not a 500."""
    if field == "id":
        return value  # the keyset is the id alone
    if field == "key":
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(value)
        return value
    if field == "priority":
        if isinstance(value, bool) or not isinstance(value, int) or value not in _BIGINT:
            raise ValueError(value)
        return value
    when = parse_datetime(value) if isinstance(value, str) else None  # created_at / updated_at
    if when is None:
        raise ValueError(value)
    return when if timezone.is_aware(when) else timezone.make_aware(when, datetime.UTC)


def keyset_filter(field: str, descending: bool, value, last_id: int) -> Q:
    op = "lt" if descending else "gt"
    return Q(**{f"{field}__{op}": value}) | Q(**{field: value, "id__gt": last_id})
