"""Audit actions and entity types come from one registry (audit.events): every name the
code writes is registered, an unregistered one is refused, and the API's filters and
schema offer exactly the registered values."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from audit.events import AuditAction, EntityType
from audit.models import AuditLog
from audit.services import audit_record, audit_row

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("audit", "stories", "sessions_app", "storyhub", "bench")
WRITERS = {"audit_record", "audit_row"}


def _calls():
    """(file, line, keyword, node) for each action= / entity_type= given to an audit writer."""
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in WRITERS:
                    continue
                for keyword in node.keywords:
                    if keyword.arg in ("action", "entity_type"):
                        yield path.relative_to(ROOT), node.lineno, keyword.arg, keyword.value


def _value(node) -> str | None:
    """The name a keyword's value stands for: a literal, or a registry member."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        enum = {"AuditAction": AuditAction, "EntityType": EntityType}.get(node.value.id)
        if enum is not None:
            return enum[node.attr].value
    return None


def test_every_action_and_entity_type_the_code_writes_is_registered():
    registry = {"action": {m.value for m in AuditAction}, "entity_type": {m.value for m in EntityType}}
    seen = {"action": set(), "entity_type": set()}
    unknown = []
    for path, line, keyword, node in _calls():
        value = _value(node)
        if value is None:
            continue  # a variable, e.g. audit_record's own pass-through
        seen[keyword].add(value)
        if value not in registry[keyword]:
            unknown.append(f"{path}:{line} {keyword}={value!r}")
    assert unknown == []
    # The scan found the service layer's calls (a broken scan cannot pass silently).
    assert {"story.created", "dependency.added", "api_key.revoked", "audit.purged"} <= seen["action"]
    assert {"story_dependency", "project_dependency", "api_key", "user"} <= seen["entity_type"]


def test_names_written_by_sql_and_bench_are_registered():
    actions = {m.value for m in AuditAction}
    for name in ("0004_status_change_outside_audit", "0005_status_change_outside_audit_project"):
        module = importlib.import_module(f"stories.migrations.{name}")
        assert module.ACTION in actions
        for sql in (module.POSTGRES_FORWARD, module.SQLITE_FORWARD):
            assert f"'{module.ACTION}', 'story'" in sql
    assert "story" in {m.value for m in EntityType}
    bench = (ROOT / "bench" / "dataset.py").read_text()
    written = set(re.findall(r'"(story\.[a-z_]+)"', bench))
    assert written and written <= actions


@pytest.mark.django_db
def test_an_unregistered_action_or_entity_type_is_refused(story, owner):
    before = AuditLog.objects.count()
    with transaction.atomic():
        with pytest.raises(ValueError, match="story.exploded"):
            audit_record(actor=owner, action="story.exploded", target=story)
        with pytest.raises(ValueError, match="gadget"):
            audit_record(actor=owner, action=AuditAction.STORY_UPDATED, target=story, entity_type="gadget")
        with pytest.raises(ValueError, match="entity type"):
            audit_row(actor=owner, action="story.updated")  # about nothing at all
        row = audit_record(actor=owner, action="story.updated", target=story)
    assert AuditLog.objects.count() == before + 1
    stored = AuditLog.objects.get(pk=row.pk)
    assert (type(stored.action), stored.action, stored.entity_type) == (str, "story.updated", "story")


def test_registry_values_are_unique_and_namespaced():
    values = [m.value for m in AuditAction]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+", v) for v in values)
    assert {"user.deactivated", "session.revoked", "api_key.created", "api_key.revoked"} <= set(values)


@pytest.mark.django_db
def test_api_filters_take_only_registered_values(story, owner):
    client = APIClient()
    client.force_authenticate(owner)
    ok = client.get("/api/v1/audit/?action=story.created&entity_type=story")
    assert ok.status_code == 200 and [r["action"] for r in ok.json()["results"]] == ["story.created"]
    for name, bad in (("action", "story.exploded"), ("entity_type", "gadget")):
        response = client.get(f"/api/v1/audit/?{name}={bad}")
        assert response.status_code == 400
        [message] = response.json()["details"][name]
        assert bad in message and ("story.created" if name == "action" else "story_dependency") in message


@pytest.mark.django_db
def test_schema_lists_the_registry_as_enums(owner):
    client = APIClient()
    client.force_authenticate(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/audit/"]["get"]["parameters"]}
    assert sorted(params["action"]["enum"]) == sorted(m.value for m in AuditAction)
    assert sorted(params["entity_type"]["enum"]) == sorted(m.value for m in EntityType)
    row = schema["components"]["schemas"]["AuditRowOut"]["properties"]
    assert "$ref" in row["action"] or "enum" in row["action"] or "allOf" in row["action"]
