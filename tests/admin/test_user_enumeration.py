"""Staff without the user view permission cannot enumerate accounts: in autocomplete
fields they find a user only by exact username, and no admin search matches emails for
them. With `auth.view_user` the user search is the full one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = reverse("admin:autocomplete")
MEMBER_FIELD = {"app_label": "stories", "model_name": "projectmember", "field_name": "user"}


@pytest.fixture
def people(project, owner):
    findme = UserFactory(username="findme")
    ceo = UserFactory(username="quiet", email="secret-ceo@corp.example", first_name="Alice")
    MemberFactory(project=project, user=ceo, role="viewer", actor=owner)
    return findme, ceo


def picked(client, term: str) -> list[str]:
    response = client.get(AUTOCOMPLETE, {"term": term, **MEMBER_FIELD})
    assert response.status_code == 200
    assert "@" not in response.content.decode()
    return [r["text"] for r in response.json()["results"]]


def test_autocomplete_without_view_permission_needs_the_exact_username(staff_client, people):
    client = staff_client("admin")
    assert picked(client, "") == []  # used to list every account
    assert picked(client, "e") == []
    assert picked(client, "secret-ceo") == []  # nor matches on emails
    assert picked(client, "Alice") == []  # nor on names
    assert picked(client, "FINDME") == ["findme"]
    assert picked(client, " quiet ") == ["quiet"]
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_member_search_does_not_match_emails_without_view_permission(staff_client, people):
    client = staff_client("admin")
    members = reverse("admin:stories_projectmember_changelist")
    assert client.get(members, {"q": "secret-ceo"}).context["cl"].result_count == 0
    assert client.get(members, {"q": "quiet"}).context["cl"].result_count == 1
    client.user.user_permissions.add(Permission.objects.get(codename="view_user"))
    assert client.get(members, {"q": "secret-ceo"}).context["cl"].result_count == 1


def test_view_permission_searches_users_fully(staff_client, people):
    client = staff_client("admin")
    client.user.user_permissions.add(Permission.objects.get(codename="view_user"))
    response = client.get(AUTOCOMPLETE, {"term": "secret-ceo", **MEMBER_FIELD})
    assert [r["text"] for r in response.json()["results"]] == ["quiet"]
    listing = client.get(reverse("admin:auth_user_changelist"), {"q": "secret-ceo"})
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
