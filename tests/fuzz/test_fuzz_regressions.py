"""Inputs schemathesis found that used to give a 500."""

import pytest
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_nul_character_in_json_metadata_is_a_400_not_a_500():
    owner = UserFactory()
    ProjectFactory(actor=owner, slug="nul-meta")
    client = APIClient()
    client.force_authenticate(owner)
    resp = client.patch("/api/v1/projects/nul-meta/", {"metadata": {"k\u0000ey": ["v"]}}, format="json")
    # Refused on both databases alike (jsonb cannot store it; storyhub.validators says so first).
    assert resp.status_code == 400, resp.content
    assert resp.json()["code"] == "validation_error"
    assert resp.json()["details"] == {"metadata": ["NUL characters are not allowed."]}
