"""End to end in a real headless browser: Playwright drives Debian's system chromium
against pytest-django's live server.

Log in, create a project and two stories, link a dependency, change a status, then see
the new status_history row on the story page and the audit row in the audit log.
Screenshots go to test-artifacts/admin-browser/. `make test` installs chromium when it
is missing (scripts/ensure_chromium.sh); with CI=true a missing browser fails the test
instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin-browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "browser-pass-123"


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"chromium is not installed at {CHROMIUM} (run scripts/ensure_chromium.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; browser tests are mandatory when CI=true", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def launched_chromium(artifacts: Path | None = None) -> Iterator[Any]:
    """Debian's chromium under Playwright, for a module's browser fixture. `artifacts`,
    when given, is emptied first: this run's screenshots only."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    if artifacts is not None:
        if artifacts.exists():
            shutil.rmtree(artifacts)
        artifacts.mkdir(parents=True)
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # in between are still plain synchronous calls.
    mp = pytest.MonkeyPatch()
    mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        mp.undo()


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts():
    """This run's screenshots only."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)


@pytest.fixture
def browser_page(monkeypatch):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes in between are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            # The last page seen, pass or fail: the first thing to look at after a failure.
            page.screenshot(path=str(ARTIFACTS / "last-page.png"), full_page=True)
            context.close()
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def pick_autocomplete(page, select_id: str, term: str, expect: str) -> None:
    """Choose `expect` in the admin's select2 autocomplete for <select id=select_id>."""
    page.locator(f"#{select_id} + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(term)
    page.locator(".select2-results__option", has_text=expect).first.click()


def save_and_continue(page) -> None:
    page.locator('input[name="_continue"]').click()
    page.wait_for_load_state("load")


@pytest.mark.django_db(transaction=True)
def test_admin_end_to_end_in_chromium(browser_page, live_server, django_user_model):
    from audit.models import AuditLog
    from stories.models import Project, StatusHistory, Story, StoryDependency

    django_user_model.objects.create_superuser("planner", "planner@example.com", PASSWORD)
    page = browser_page
    base = live_server.url

    # Log in.
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "planner")
    page.fill("#id_password", PASSWORD)
    page.locator('input[type="submit"]').click()
    page.wait_for_load_state("load")
    assert "StoryHub administration" in page.content()
    # The admin's CSS is served (a styled page, not bare HTML).
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"
    shot(page, "01-index")

    # A project.
    page.goto(f"{base}/admin/stories/project/add/")
    page.fill("#id_slug", "browser-proj")
    page.fill("#id_name", "Browser project")
    save_and_continue(page)
    assert page.locator(".messagelist .success").count() == 1, page.content()
    project = Project.objects.get(slug="browser-proj")
    shot(page, "02-project")

    # Two stories; the project is chosen with the autocomplete widget.
    for key, title in (("BRW-1", "Write the thing"), ("BRW-2", "Design the thing")):
        page.goto(f"{base}/admin/stories/story/add/")
        pick_autocomplete(page, "id_project", "browser", "browser-proj")
        page.fill("#id_key", key)
        page.fill("#id_title", title)
        save_and_continue(page)
        assert page.locator(".messagelist .success").count() == 1, page.content()
    first = Story.objects.get(project=project, key="BRW-1")
    second = Story.objects.get(project=project, key="BRW-2")
    shot(page, "03-story-added")

    # BRW-1 depends on BRW-2, linked in the "depends on" inline.
    page.goto(f"{base}/admin/stories/story/{first.pk}/change/")
    page.locator("#dependencies-group .add-row a").click()
    pick_autocomplete(page, "id_dependencies-0-depends_on", "BRW-2", "BRW-2")
    save_and_continue(page)
    assert page.locator(".messagelist .success").count() == 1, page.content()
    assert StoryDependency.objects.filter(story=first, depends_on=second).exists()

    # Change BRW-2's status with a note.
    page.goto(f"{base}/admin/stories/story/{second.pk}/change/")
    page.select_option("#id_status", label="Ready")
    page.fill("#id_status_notes", "moved in the browser")
    save_and_continue(page)
    assert page.locator(".messagelist .success").count() == 1, page.content()

    # The new status_history row is on the story page.
    history = page.locator("#status_history-group")
    history.scroll_into_view_if_needed()
    assert history.get_by_text("moved in the browser").count() == 1
    assert (
        StatusHistory.objects.filter(story=second, new_status__slug="ready", notes="moved in the browser").count() == 1
    )
    shot(page, "04-story-status-history")

    # And the audit row in the audit log, linked to the story.
    page.goto(f"{base}/admin/audit/auditlog/?action=story.updated")
    row = page.locator("#result_list tbody tr").first
    assert "story.updated" in row.inner_text()
    assert "planner" in row.inner_text()
    row.locator(f'a[href$="/admin/stories/story/{second.pk}/change/"]').wait_for()
    audit = AuditLog.objects.get(action="story.updated", entity_id=str(second.pk))
    assert audit.details["changes"]["status"] == {"old": "draft", "new": "ready"}
    assert audit.details["source"] == "admin"
    shot(page, "05-audit-log")

    # The dependency graph draws BRW-2 ready and BRW-1 waiting on it.
    page.goto(f"{base}/admin/stories/project/{project.pk}/graph/")
    assert page.locator('#storyhub-graph g[data-key="BRW-2"]').get_attribute("data-state") == "ready"
    assert page.locator('#storyhub-graph g[data-key="BRW-1"]').get_attribute("data-state") == "waiting"
    shot(page, "06-graph")

    # A refusal comes back on the form: closing the cycle BRW-2 → BRW-1.
    page.goto(f"{base}/admin/stories/story/{second.pk}/change/")
    page.locator("#dependencies-group .add-row a").click()
    pick_autocomplete(page, "id_dependencies-0-depends_on", "BRW-1", "BRW-1")
    save_and_continue(page)
    assert page.locator(".errornote").count() == 1
    assert "would close a cycle" in page.content()
    assert not StoryDependency.objects.filter(story=second).exists()
    shot(page, "07-cycle-refused")

    # The bulk action: both stories to "In progress", through the intermediate page.
    page.goto(f"{base}/admin/stories/story/")
    page.locator("#action-toggle").check()
    page.select_option('select[name="action"]', "transition_selected")
    page.locator('button[name="index"]').click()
    page.wait_for_load_state("load")
    page.select_option("#id_status", "in_progress")
    page.fill("#id_notes", "sprint started")
    shot(page, "08-transition-action")
    page.locator('#storyhub-action-form input[type="submit"]').click()
    page.wait_for_load_state("load")
    # The blocked guard: BRW-1 waits for BRW-2, so only BRW-2 moves and the message says why.
    messages = page.locator(".messagelist").inner_text()
    assert "Moved to 'in_progress': 1 story" in messages
    assert "BRW-1 is blocked by unfinished stories: BRW-2" in messages
    assert StatusHistory.objects.filter(notes="sprint started").count() == 1
    assert not StatusHistory.objects.filter(story=first, notes="sprint started").exists()
    shot(page, "09-after-action-guarded")

    # A superuser (owner) overrides the guard for BRW-1 with a reason, which is audited.
    page.locator("#action-toggle").check()
    page.select_option('select[name="action"]', "transition_selected")
    page.locator('button[name="index"]').click()
    page.wait_for_load_state("load")
    page.select_option("#id_status", "in_progress")
    page.fill("#id_notes", "sprint started")
    page.locator("#id_override_blocked").check()
    page.fill("#id_reason", "BRW-2 is nearly done")
    page.locator('#storyhub-action-form input[type="submit"]').click()
    page.wait_for_load_state("load")
    assert "Moved to 'in_progress': 1 story" in page.locator(".messagelist").inner_text()
    assert StatusHistory.objects.filter(notes__contains="BRW-2 is nearly done", story=first).count() == 1
    override = AuditLog.objects.filter(action="story.status_changed", entity_id=str(first.pk)).get()
    assert override.details["override_blocked"]["reason"] == "BRW-2 is nearly done"
    shot(page, "09-after-action-override")


# The graph at 500 stories (layout geometry, filters, highlight, axe): test_console_browser.py.
