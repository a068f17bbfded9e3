"""Workflow transitions edited as a matrix of checkboxes; "any status" is a box of its
own (an empty list), every change goes through status_update (audited), all or nothing."""

from __future__ import annotations

from django.urls import reverse

from audit.models import AuditLog
from stories.models import Status


def matrix_url(project):
    return reverse("admin:stories_project_workflow", args=[project.pk])


def posted(project, **rows):
    """rows: slug → list of target slugs, or "any"."""
    data = {}
    for status in Status.objects.filter(project=project):
        want = rows.get(status.slug, status.allowed_transitions or "any")
        if want == "any":
            data[f"any-{status.pk}"] = "1"
        else:
            data[f"to-{status.pk}"] = want
    return data


def test_matrix_shows_and_saves_transitions(su_client, project):
    draft = Status.objects.get(project=project, slug="draft")
    page = su_client.get(matrix_url(project))
    assert page.status_code == 200
    body = page.content.decode()
    assert f'name="to-{draft.pk}" value="ready"' in body
    assert 'aria-label="from Draft to Ready"' in body
    response = su_client.post(matrix_url(project), posted(project, draft=["ready", "cancelled"], ready="any"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert set(draft.allowed_transitions) == {"ready", "cancelled"}
    assert Status.objects.get(project=project, slug="ready").allowed_transitions == []
    assert AuditLog.objects.filter(action="status.updated", entity_id=str(draft.pk)).count() == 1
    # The project page shows the moves as words and links the matrix; no JSON to edit.
    change = su_client.get(reverse("admin:stories_project_change", args=[project.pk])).content.decode()
    assert matrix_url(project) in change
    assert "statuses-0-allowed_transitions" not in change


def test_a_row_with_no_move_is_refused_and_nothing_saved(su_client, project):
    before = dict(Status.objects.filter(project=project).values_list("slug", "allowed_transitions"))
    data = posted(project, draft=["ready"])
    data.pop(f"to-{Status.objects.get(project=project, slug='ready').pk}", None)
    data.pop(f"any-{Status.objects.get(project=project, slug='ready').pk}", None)
    response = su_client.post(matrix_url(project), data, follow=True)
    assert "allows no move" in response.content.decode()
    assert dict(Status.objects.filter(project=project).values_list("slug", "allowed_transitions")) == before


def test_viewer_reads_member_cannot_save(staff_client, project):
    viewer = staff_client("viewer")
    page = viewer.get(matrix_url(project))
    assert page.status_code == 200 and "disabled" in page.content.decode()
    assert viewer.post(matrix_url(project), posted(project)).status_code == 403
    assert staff_client(None, "nobody").get(matrix_url(project)).status_code == 404
