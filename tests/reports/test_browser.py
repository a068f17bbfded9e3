"""The Reports page and the exported dashboard in a real headless browser (Playwright and
Debian's chromium, as tests/admin/test_browser.py): every chart is drawn (an <svg> per
report with its marks) on the admin page at desktop width and at 390 px, and in the
exported index.html opened from disk (file://, no server, no network). Screenshots go to
test-artifacts/reports-browser/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command

from stories.reports.charts import CHART_NAMES
from tests.admin.test_browser import launched_chromium

from .conftest import MARKER, build_report_world

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports-browser"
PASSWORD = "reports-pass-123"
# Charts that have data in the fixture's range (the others may say "No data").
WITH_MARKS = set(CHART_NAMES)


@pytest.fixture(scope="module")
def browser():
    with launched_chromium(ARTIFACTS) as launched:
        yield launched


def drawn_charts(page) -> dict[str, int]:
    """chart name → number of data marks, for every report chart in the page's DOM."""
    return page.eval_on_selector_all(
        "svg.report-chart",
        "els => Object.fromEntries(els.map(e => [e.dataset.chart, e.querySelectorAll('.mark').length]))",
    )


def fits(page, width: int) -> None:
    """No horizontal scrolling of the page (a chart wider than its box scrolls inside it),
    and the charts' text is drawn at a readable size."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    boxes = page.eval_on_selector_all(
        "svg.report-chart", "els => els.map(e => e.closest('.chart-scroll').getBoundingClientRect().right)"
    )
    assert max(boxes) <= width, boxes
    sizes = page.eval_on_selector_all(
        "svg.report-chart text.tick", "els => els.map(e => e.getBoundingClientRect().height).filter(h => h > 0)"
    )
    assert min(sizes) >= 10, min(sizes)


@pytest.mark.django_db(transaction=True)
def test_reports_page_and_exported_dashboard_in_chromium(browser, live_server, tmp_path):
    world = build_report_world()
    world.viewer.is_staff = True
    world.viewer.set_password(PASSWORD)
    world.viewer.save()
    query = "?from=2026-02-23&to=2026-03-10&sprint=s1"
    url = f"{live_server.url}/admin/stories/project/{world.project.pk}/reports/{query}"

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(
        f"{live_server.url}/admin/login/?"
        + urlencode({"next": f"/admin/stories/project/{world.project.pk}/reports/{query}"})
    )
    page.fill("#id_username", world.viewer.username)
    page.fill("#id_password", PASSWORD)
    page.locator('input[type="submit"]').click()
    page.wait_for_load_state("load")
    charts = drawn_charts(page)
    assert list(charts) == CHART_NAMES
    assert all(charts[name] > 0 for name in WITH_MARKS), charts
    assert MARKER not in page.content().lower()
    assert page.locator("#report-burndown .chart-title").text_content().startswith("Burndown, sprint Sprint 1")
    page.screenshot(path=str(ARTIFACTS / "01-reports-page.png"), full_page=True)

    # A phone: every chart fits the 390 px viewport.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    assert list(drawn_charts(page)) == CHART_NAMES
    fits(page, 390)
    page.screenshot(path=str(ARTIFACTS / "02-reports-page-390px.png"), full_page=True)
    context.close()

    # The static dashboard, from disk, with the network cut off.
    out = ARTIFACTS / "dashboard"
    call_command(
        "export_dashboard",
        "--output",
        str(out),
        "--user",
        world.viewer.username,
        "--from",
        "2026-02-23",
        "--to",
        "2026-03-10",
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((out / "index.html").as_uri())
    sections = page.eval_on_selector_all("section.project", "els => els.map(e => e.dataset.project)")
    assert sections == ["oth", "rep"]
    rep = page.eval_on_selector_all(
        "section[data-project=rep] svg.report-chart",
        "els => Object.fromEntries(els.map(e => [e.dataset.chart, e.querySelectorAll('.mark').length]))",
    )
    assert list(rep) == CHART_NAMES and all(rep[name] > 0 for name in WITH_MARKS), rep
    assert all(u.startswith("file://") for u in requests), requests
    page.screenshot(path=str(ARTIFACTS / "03-dashboard.png"), full_page=True)
    page.select_option("#project-filter", "project-rep")
    assert page.eval_on_selector("section[data-project=oth]", "e => e.hidden") is True
    page.set_viewport_size({"width": 390, "height": 844})
    fits(page, 390)
    page.screenshot(path=str(ARTIFACTS / "04-dashboard-390px.png"), full_page=True)
    context.close()
