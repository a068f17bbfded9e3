"""The admin's Reports page and `manage.py export_dashboard`: every chart is drawn, the
hidden project is never named, and the export follows whose view it is."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from stories.reports.charts import CHART_NAMES

from .conftest import MARKER

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_viewer(rw):
    rw.viewer.is_staff = True
    rw.viewer.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(rw.viewer)
    return client


def charts_in(html: str) -> list[str]:
    return re.findall(r'<svg[^>]*class="report-chart" data-chart="([^"]+)"', html)


def test_admin_reports_page_draws_every_chart(staff_viewer, rw):
    response = staff_viewer.get(
        f"/admin/stories/project/{rw.project.pk}/reports/?from=2026-02-23&to=2026-03-10&sprint=s1"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert charts_in(html) == CHART_NAMES
    assert 'class="mark' in html and "Burndown, sprint Sprint 1" in html
    assert MARKER not in html.lower()


def test_admin_reports_page_shows_bad_parameters(staff_viewer, rw):
    response = staff_viewer.get(f"/admin/stories/project/{rw.project.pk}/reports/?tz=Nowhere/City&sprint=nope")
    html = response.content.decode()
    assert response.status_code == 200 and "Unknown time zone" in html and "no sprint backlog" in html
    assert charts_in(html) == CHART_NAMES


def test_admin_reports_page_of_a_hidden_project(staff_viewer, rw):
    response = staff_viewer.get(f"/admin/stories/project/{rw.secret.pk}/reports/")
    assert response.status_code in (302, 403, 404)
    assert MARKER not in response.content.decode().lower()


def test_export_dashboard_as_a_user(rw, tmp_path):
    call_command(
        "export_dashboard",
        "--output",
        str(tmp_path),
        "--user",
        rw.viewer.username,
        "--from",
        "2026-02-23",
        "--to",
        "2026-03-10",
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["index.html", "oth.json", "rep.json"]
    data = json.loads((tmp_path / "rep.json").read_text())
    assert data["reports"]["velocity"]["rows"][1]["net_points"] == 6
    assert data["reports"]["sprint"]["sprint"] == "s2"  # the latest sprint started by --to (03-09)
    html = (tmp_path / "index.html").read_text()
    assert charts_in(html).count("velocity") == 2 and set(charts_in(html)) == set(CHART_NAMES)
    no_namespaces = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in no_namespaces and "https://" not in no_namespaces
    assert "<link" not in html and " src=" not in html and "fetch(" not in html
    for path in tmp_path.iterdir():
        assert MARKER not in path.read_text().lower(), path.name


def test_export_dashboard_as_the_system(rw, tmp_path):
    call_command(
        "export_dashboard", "--output", str(tmp_path), "--system", "--project", "rep", "--project", rw.secret.slug
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "rep.json", f"{MARKER}-secret.json"]


def test_export_dashboard_refuses_without_whose_view(rw, tmp_path):
    with pytest.raises(CommandError):
        call_command("export_dashboard", "--output", str(tmp_path))
    with pytest.raises(CommandError, match="No project"):
        call_command(
            "export_dashboard", "--output", str(tmp_path), "--user", rw.viewer.username, "--project", rw.secret.slug
        )
    with pytest.raises(CommandError, match="time zone"):
        call_command("export_dashboard", "--output", str(tmp_path), "--system", "--tz", "Nowhere/City")
