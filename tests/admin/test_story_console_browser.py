"""The story page and the story add form in a real browser (Playwright + Debian's
chromium, as test_console_browser.py): the "Blocked by" / "Blocks" panel and its "Show in
graph" link (the graph opens centred on the story with what it waits for and what waits
for it highlighted), and the add form re-filtering statuses, backlogs and epics when the
project changes, without a reload; axe-core on both; screenshots at 1,440 and 390 px in
test-artifacts/console-story/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin.test_browser import PASSWORD, launched_chromium
from tests.admin.test_console_browser import NARROW, WIDE, assert_accessible, login, overflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console-story"


@pytest.fixture(scope="module")
def browser():
    with launched_chromium(ARTIFACTS) as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _shots(page, name: str) -> None:
    for viewport, width in ((WIDE, 1440), (NARROW, 390)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        assert overflow(page) <= 0, (name, width, overflow(page))
    page.set_viewport_size(WIDE)


@pytest.mark.django_db(transaction=True)
def test_story_panel_and_graph_focus(page, live_server, django_user_model):
    from stories import services
    from tests.factories import ProjectFactory, StoryFactory

    user = django_user_model.objects.create_superuser("panel", "panel@example.com", PASSWORD)
    project = ProjectFactory(slug="panel", name="Panel project", actor=user)
    s = {
        key: StoryFactory(project=project, key=key, title=f"{key}: a title long enough to wrap on a phone", actor=user)
        for key in ("P-1", "P-2", "P-3", "P-4", "P-5")
    }
    services.story_transition(actor=user, story=s["P-1"], status="done")
    # P-3 waits for P-1 (done) and P-2 (open); P-4 waits for P-3; P-5 is unrelated.
    services.dependency_add(actor=user, story=s["P-3"], depends_on=s["P-1"])
    services.dependency_add(actor=user, story=s["P-3"], depends_on=s["P-2"])
    services.dependency_add(actor=user, story=s["P-4"], depends_on=s["P-3"])
    login(page, live_server.url, "panel")
    page.goto(f"{live_server.url}/admin/stories/story/{s['P-3'].pk}/change/")
    panel = page.locator(".storyhub-block-links")
    assert panel.is_visible()
    assert "Waiting on 1 unfinished blocker." in panel.inner_text()
    rows = page.locator("#block-links-blocked_by tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").all_inner_texts()[1:] == ["Done", "Completed", "finished"]
    assert rows.nth(1).locator("td").last.inner_text() == "unfinished"
    assert page.locator("#block-links-blocks tbody tr").count() == 1
    assert_accessible(page)
    _shots(page, "story-panel")

    # A blocker's link opens that story; back, then the graph centred on P-3.
    page.locator("#block-links-blocked_by a", has_text="P-2:").click()
    page.wait_for_url(f"**/admin/stories/story/{s['P-2'].pk}/change/")
    page.go_back()
    page.get_by_role("link", name="Show in graph").click()
    page.wait_for_selector('#storyhub-graph[data-ready="true"]')
    assert "focus=P-3" in page.url
    graph = "#storyhub-graph"
    assert page.get_attribute(graph, "data-selected") == "P-3"
    upstream = page.locator(f"{graph} g.node.upstream").evaluate_all("els => els.map(e => e.dataset.key).sort()")
    downstream = page.locator(f"{graph} g.node.downstream").evaluate_all("els => els.map(e => e.dataset.key)")
    assert upstream == ["P-1", "P-2"] and downstream == ["P-4"]
    assert page.locator(f'{graph} g.node.faded[data-key="P-5"]').count() == 1
    # Centred: the focused box's centre is near the middle of the frame.
    off = page.evaluate(
        """() => {
      const frame = document.querySelector('#storyhub-graph').getBoundingClientRect();
      const box = document.querySelector('#storyhub-graph g.node[data-key="P-3"] rect.box').getBoundingClientRect();
      return [Math.abs(box.x + box.width / 2 - (frame.x + frame.width / 2)) / frame.width,
              Math.abs(box.y + box.height / 2 - (frame.y + frame.height / 2)) / frame.height];
    }"""
    )
    assert max(off) < 0.1, off
    assert "P-3" in page.locator("#graph-panel").inner_text()
    _shots(page, "graph-focus")


def _pick_project(page, slug: str) -> None:
    """Choose a project in Django's autocomplete the way a user does: open, type, pick."""
    page.locator(".field-project .select2-selection").click()
    page.locator(".select2-search__field").fill(slug)
    page.locator(".select2-results__option", has_text=slug).first.click()


def _options(page, name: str) -> list[str]:
    return page.locator(f"#id_{name} option").all_inner_texts()


@pytest.mark.django_db(transaction=True)
def test_add_form_refilters_choices_live(page, live_server, django_user_model):
    from stories import services
    from stories.models import Status, Story
    from tests.factories import ProjectFactory

    user = django_user_model.objects.create_superuser("adder", "adder@example.com", PASSWORD)
    alpha = ProjectFactory(slug="alpha", name="Alpha", actor=user)
    beta = ProjectFactory(slug="beta", name="Beta", actor=user)
    services.status_create(actor=user, project=alpha, slug="alpha-only", name="Alpha only", category="started")
    services.status_create(actor=user, project=beta, slug="beta-only", name="Beta only", category="started")
    services.backlog_create(actor=user, project=beta, slug="beta-sprint", name="Beta sprint")
    services.epic_create(actor=user, project=alpha, slug="alpha-epic", name="Alpha epic")
    login(page, live_server.url, "adder")
    page.goto(f"{live_server.url}/admin/stories/story/add/")
    # Before a project is chosen every project's statuses are there, by project.
    assert "alpha · alpha-only" in _options(page, "status") and "beta · beta-only" in _options(page, "status")
    page.evaluate("() => { window.__sameDocument = true; }")

    _pick_project(page, "alpha")
    page.wait_for_function(f"() => document.body.dataset.choicesProject === '{alpha.pk}'")
    statuses = _options(page, "status")
    assert "Alpha only" in statuses and "Beta only" not in statuses
    assert len(statuses) == 1 + Status.objects.filter(project=alpha).count()  # and the empty choice
    assert _options(page, "epic")[1:] == ["Alpha epic"] and _options(page, "backlog")[1:] == []
    page.select_option("#id_status", label="Alpha only")

    _pick_project(page, "beta")
    page.wait_for_function(f"() => document.body.dataset.choicesProject === '{beta.pk}'")
    statuses = _options(page, "status")
    assert "Beta only" in statuses and "Alpha only" not in statuses
    assert _options(page, "backlog")[1:] == ["Beta sprint"] and _options(page, "epic")[1:] == []
    assert page.input_value("#id_status") == ""  # Alpha's status is gone, not kept
    assert page.evaluate("() => window.__sameDocument === true")  # no reload
    assert "statuses of the chosen project" in page.inner_text("#storyhub-choices-note")
    assert_accessible(page)
    _shots(page, "story-add-refiltered")

    page.fill("#id_key", "BETA-1")
    page.fill("#id_title", "Added from the refiltered form")
    page.select_option("#id_status", label="Beta only")
    page.select_option("#id_backlog", label="Beta sprint")
    page.locator('input[name="_save"]').click()
    page.wait_for_load_state("load")
    story = Story.objects.get(project=beta, key="BETA-1")
    assert (story.status.slug, story.backlog.slug) == ("beta-only", "beta-sprint")
