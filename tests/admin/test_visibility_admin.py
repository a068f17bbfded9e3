"""The admin shows no story of a project the staff user cannot see: not on the graph
page, not in the story page's dependency inlines, choices or autocomplete, not on the
story-dependency pages (README "Visibility"). Saving a page never drops such links."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from stories.models import StoryDependency
from tests.admin.conftest import add_inline_row, admin_form_data
from tests.cross_project import assert_no_marker, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world(bee_is_staff=True)


@pytest.fixture
def bee(world) -> Client:
    client = Client()
    client.force_login(world.bee)
    return client


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    body = response.content.decode()
    assert_no_marker(body, url)
    return body


def test_graph_page_draws_a_placeholder(world, bee):
    body = page(bee, reverse("admin:stories_project_graph", args=[world.beta.pk]))
    data = json.loads(body.split('id="storyhub-graph-data" type="application/json">')[1].split("</script>")[0])
    states = {n["label"]: n["state"] for n in data["nodes"]}
    assert states["(hidden story)"] == "hidden"
    assert states["B-1"] == "waiting"  # on the hidden, unfinished story
    # No link to the hidden story's change page (its id).
    assert reverse("admin:stories_story_change", args=[world.secret.pk]) not in body


def test_story_pages_leave_hidden_links_out_of_the_inlines(world, bee):
    for story in (world.b1, world.b2):  # B-1 depends on SEC-1, SEC-1 depends on B-2
        body = page(bee, reverse("admin:stories_story_change", args=[story.pk]))
        assert "1 dependency link to or from" in " ".join(body.split())
    body = page(bee, reverse("admin:stories_story_change", args=[world.b3.pk]))
    assert "storyhub-hidden-links" not in body


def test_dependency_changelist_and_change_page(world, bee):
    url = reverse("admin:stories_storydependency_changelist")
    page(bee, url)
    assert bee.get(url).context["cl"].result_count == 0  # both links have a hidden end
    link = StoryDependency.objects.get(story=world.b1, depends_on=world.secret)
    response = bee.get(reverse("admin:stories_storydependency_change", args=[link.pk]), follow=True)
    assert_no_marker(response.content, "dependency change page")
    link = StoryDependency.objects.get(story=world.secret, depends_on=world.b2)
    response = bee.get(reverse("admin:stories_storydependency_change", args=[link.pk]), follow=True)
    assert_no_marker(response.content, "dependency change page")


def test_autocomplete_offers_no_hidden_story(world, bee):
    for field in ("depends_on", "story"):
        for model in ("storydependency",):
            url = reverse("admin:autocomplete")
            response = bee.get(url, {"app_label": "stories", "model_name": model, "field_name": field, "term": "SEC"})
            assert_no_marker(response.content, f"autocomplete {field}")
    response = bee.get(
        reverse("admin:autocomplete"),
        {"app_label": "stories", "model_name": "storydependency", "field_name": "depends_on", "term": "Quantum"},
    )
    assert_no_marker(response.content, "autocomplete by title")


def test_a_hidden_story_cannot_be_chosen_or_probed(world, bee):
    add = reverse("admin:stories_storydependency_add")
    hidden = bee.post(add, {"story": world.b3.pk, "depends_on": world.secret.pk, "type": "blocks"})
    absent = bee.post(add, {"story": world.b3.pk, "depends_on": 999_999, "type": "blocks"})
    assert hidden.status_code == absent.status_code == 200  # the form again, with an error
    assert_no_marker(hidden.content, "add form")
    assert hidden.context["adminform"].form.errors == absent.context["adminform"].form.errors
    assert not StoryDependency.objects.filter(story=world.b3, depends_on=world.secret).exists()


def test_saving_the_story_page_keeps_hidden_links(world, bee):
    url = reverse("admin:stories_story_change", args=[world.b1.pk])
    data = admin_form_data(bee.get(url))
    data["title"] = "Beta one, renamed"
    add_inline_row(data, "dependencies", depends_on=world.b3.pk, type="blocks", description="")
    response = bee.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    keys = set(StoryDependency.objects.filter(story=world.b1).values_list("depends_on__key", flat=True))
    assert keys == {"SEC-1", "B-3"}


def test_project_dependency_pages_do_not_name_a_hidden_project(world, bee):
    from stories import services

    link = services.project_dependency_add(actor=world.owner, from_project=world.beta, to_project=world.alpha)
    url = reverse("admin:stories_projectdependency_changelist")
    page(bee, url)
    assert bee.get(url).context["cl"].result_count == 0
    response = bee.get(reverse("admin:stories_projectdependency_change", args=[link.pk]), follow=True)
    assert_no_marker(response.content, "project dependency change page")


def test_a_hidden_project_cannot_be_chosen_as_a_project_dependency(world, bee):
    from stories import services
    from stories.models import ProjectDependency

    services.project_member_set(actor=world.owner, project=world.beta, user=world.bee, role="admin")
    add = reverse("admin:stories_projectdependency_add")
    hidden = bee.post(add, {"from_project": world.beta.pk, "to_project": world.alpha.pk, "type": "depends"})
    absent = bee.post(add, {"from_project": world.beta.pk, "to_project": 999_999, "type": "depends"})
    assert hidden.status_code == absent.status_code == 200
    assert_no_marker(hidden.content, "project dependency add form")
    assert hidden.context["adminform"].form.errors == absent.context["adminform"].form.errors
    assert not ProjectDependency.objects.exists()


def test_the_delete_confirmation_names_no_hidden_story(world, bee):
    body = page(bee, reverse("admin:stories_story_delete", args=[world.b1.pk]))
    assert f"{world.b1.pk} → {world.secret.pk}" not in body
