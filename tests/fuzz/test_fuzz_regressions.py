"""Inputs schemathesis found that used to give a 500."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_nul_character_in_json_metadata_is_a_400_not_a_500():
    owner = UserFactory()
    ProjectFactory(actor=owner, slug="nul-meta")
    client = APIClient()
    client.force_authenticate(owner)
    resp = client.patch("/api/v1/projects/nul-meta/", {"metadata": {"k\u0000ey": ["v"]}}, format="json")
    if connection.vendor == "postgresql":  # jsonb refuses \\u0000
        assert resp.status_code == 400, resp.content
        assert resp.json()["code"] == "validation_error"
    else:
        assert resp.status_code == 200, resp.content
