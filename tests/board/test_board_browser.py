"""The board in Debian's chromium (Playwright; one browser for the module): a drag to
another column is one status_history and one audit row; a blocked card dragged is refused
with its blockers named; a reorder persists after a reload; the keyboard way works."""

from __future__ import annotations

import pytest

from tests.admin.test_browser import ARTIFACTS, PASSWORD, launched_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


def column(page, slug):
    return page.locator(f'.board-column[data-status="{slug}"]')


@pytest.mark.django_db(transaction=True)
def test_board_drag_refuse_reorder_and_keyboard(browser, live_server, django_user_model):
    from audit.models import AuditLog
    from stories import services
    from stories.models import STORY_RANK_ORDER, StatusHistory, Story
    from tests.factories import ProjectFactory, StoryFactory

    user = django_user_model.objects.create_superuser("boarder", "b@example.com", PASSWORD)
    project = ProjectFactory(slug="board-proj", name="Board project", actor=user)
    blocker = StoryFactory(project=project, key="BD-1", title="Blocker")
    waiting = StoryFactory(project=project, key="BD-2", title="Waiting")
    StoryFactory(project=project, key="BD-3", title="Third")
    services.dependency_add(actor=user, story=waiting, depends_on=blocker)
    for story in (blocker, waiting):
        services.story_transition(actor=user, story=Story.objects.get(pk=story.pk), status="ready")

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "boarder")
        page.fill("#id_password", PASSWORD)
        page.locator('input[type="submit"]').click()
        page.wait_for_load_state("load")
        board = f"{live_server.url}/admin/stories/project/{project.pk}/board/"
        page.goto(board)

        # Drag BD-1 from Ready to In progress: one history row, one audit row.
        history, audit = StatusHistory.objects.count(), AuditLog.objects.count()
        with page.expect_navigation():
            page.drag_and_drop(
                '.board-card[data-key="BD-1"] .card-title', '.board-column[data-status="in_progress"] h3'
            )
        assert column(page, "in_progress").locator('[data-key="BD-1"]').count() == 1
        assert Story.objects.get(pk=blocker.pk).status.slug == "in_progress"
        assert StatusHistory.objects.count() == history + 1
        assert AuditLog.objects.count() == audit + 1
        page.screenshot(path=str(ARTIFACTS / "board-1440.png"), full_page=True)

        # Drag the blocked BD-2 to In progress: refused on the card, its blocker named.
        page.drag_and_drop('.board-card[data-key="BD-2"] .card-title', '.board-column[data-status="in_progress"] h3')
        error = page.locator('.board-card[data-key="BD-2"] .card-error')
        error.wait_for(state="visible")
        assert "BD-1" in error.inner_text() and "Allowed moves" in error.inner_text()
        assert Story.objects.get(pk=waiting.pk).status.slug == "ready"

        # The keyboard way: BD-3's "Move to" list and its button (Tab, Enter) bring it to
        # Ready; then a drag above BD-2 reorders the column, and the order survives a reload.
        page.focus('.board-card[data-key="BD-3"] select[name="status"]')
        page.select_option('.board-card[data-key="BD-3"] select[name="status"]', "ready")
        with page.expect_navigation():
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
        assert Story.objects.get(key="BD-3", project=project).status.slug == "ready"
        with page.expect_navigation():
            page.drag_and_drop(
                '.board-card[data-key="BD-3"] .card-title',
                '.board-card[data-key="BD-2"] .card-key',
                target_position={"x": 2, "y": 1},
            )
        page.goto(board)
        keys = column(page, "ready").locator(".board-card").evaluate_all("cards => cards.map(c => c.dataset.key)")
        assert keys == ["BD-3", "BD-2"]
        ranked = Story.objects.filter(project=project, status__slug="ready").order_by(*STORY_RANK_ORDER)
        assert [s.key for s in ranked] == ["BD-3", "BD-2"]
    finally:
        page.screenshot(path=str(ARTIFACTS / "board-last.png"), full_page=True)
        context.close()
