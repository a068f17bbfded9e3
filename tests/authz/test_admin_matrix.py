"""The authorization matrix of the admin: every page of every registered model (list,
search, add, change, history, delete, custom pages such as the project graph and the
password page), every autocomplete field, the index and app pages — × staff principals
× the objects of B, of hidden A, and B's objects linked to A (tests/authz/conftest.py).

Pages come from `admin.site` (its registry and each ModelAdmin's `get_urls()`), so a new
model or custom admin view is in the matrix without editing this file;
`test_the_admin_matrix_covers_every_admin_url` fails on a URL it cannot fill.

The rules, per page and principal (`_rules`):

- MARKER (planted all over A) shows only to a principal who may see every row of the
  page's model: the superuser, or staff holding the Django view permission of a model
  that is not project-scoped (users, groups, sessions, API keys).
- An object of A is refused (302 to the index, 403 or 404) to everyone else.
- A view-only principal is offered no write form: no save / delete / add buttons, no
  actions. View-only are the staff holding only view permissions (everywhere but their
  own API keys and password) and B's viewer (on project pages).
- No page answers 5xx; the superuser gets every read page (200).

Then writes: a view-only principal posting any change form (as the superuser's page
would post it, text fields changed) or delete confirmation changes nothing; staff cannot
mint or revoke another user's API key; the export action on B's stories and saving B's
story page neither show nor drop A's links; the board's POSTs (a move, a reorder), as JSON
and as a form, answer 404 on hidden A's board, 403 to B's viewer, change nothing when
refused and name no story of A (nor reach one from B's board).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver

from storyhub.admin_base import ProjectScopedMixin

from .conftest import MARKER, A, B

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"

# principal → (user in the world, view-only where)
STAFF = {
    "staff-view-only": ("staff-view-only", "everywhere"),
    "viewer-of-B": ("viewer", "project pages"),
    "member-of-B": ("member", None),
    "superuser": ("superuser", None),
}

# Writes every staff user may make, view-only or not: (model, page kind; None: any):
# their own API keys, their own password, starting a new project (README, Admin console).
OPEN_TO_ALL_STAFF = {("sessions_app.apikey", None), (None, "password_change"), ("stories.project", "add")}
# Pages the superuser must get (200), which also proves the URL was filled in right.
READ_KINDS = {"changelist", "search", "change", "history", "graph", "reports", "index", "app index", "jsi18n"}
# The bare object URL is Django's RedirectView to the change page (which is in the
# matrix itself): it answers 302 to everyone and shows nothing.
REDIRECT_KINDS = {"object"}
# Site URLs outside the matrix, and why.
SKIPPED_SITE_URLS = {
    "login": "the login page shows no data",
    "logout": "POST only; it ends the test's session",
    "password_change_done": "a static confirmation",
}

# A form that writes: save buttons, a delete confirmation. (Add and delete links lead to
# pages that are in the matrix themselves; actions are judged by their permissions.)
SAVE_BUTTONS = re.compile(r'name="_save"|name="_continue"|name="_addanother"|name="post" value="yes"')
SIDEBAR = re.compile(r'<nav[^>]*id="nav-sidebar".*?</nav>', re.S)


@dataclass(frozen=True)
class Page:
    kind: str  # changelist, search, add, change, history, delete, graph, password, ..., site pages
    model: str | None  # "app.model" or None for site pages
    side: str | None  # A, B, "B>A" or None (no object)
    path: str  # below /admin/, with <object_id> still in it for object pages
    query: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        where = f" of {self.side}" if self.side else ""
        query = "?" + urlencode(self.query) if self.query else ""
        return f"{self.model or 'site'} {self.kind}{where} {self.path}{query}"


def _model_label(model) -> str:
    return model._meta.label_lower


def _model_pages() -> list[Page]:
    pages = []
    for model, model_admin in admin.site._registry.items():
        label = _model_label(model)
        prefix = f"{model._meta.app_label}/{model._meta.model_name}/"
        sides = [A, B, "B>A"] if label in ("stories.storydependency", "stories.projectdependency") else [A, B]
        for pattern in model_admin.get_urls():
            route = str(pattern.pattern)
            kind = (
                pattern.name.removeprefix(f"{model._meta.app_label}_{model._meta.model_name}_")
                if pattern.name
                else "object"
            )
            if "<" not in route:
                pages.append(Page(kind, label, None, prefix + route))
                if kind == "changelist" and model_admin.search_fields:
                    # Part of MARKER: it matches A's rows, and the search box repeating
                    # what was typed is no leak.
                    pages.append(Page("search", label, None, prefix + route, (("q", MARKER[:6]),)))
                continue
            pages += [Page(kind, label, side, prefix + route) for side in sides]
    return pages


def _autocomplete_pages() -> list[Page]:
    pages = []
    for model, model_admin in admin.site._registry.items():
        for source in [model_admin, *(inline(model, admin.site) for inline in model_admin.inlines)]:
            for field in source.autocomplete_fields:
                meta = source.model._meta
                remote = _model_label(meta.get_field(field).related_model)
                query = (("app_label", meta.app_label), ("model_name", meta.model_name), ("field_name", field))
                for term in ("", MARKER[:4]):
                    kind = f"autocomplete {meta.model_name}.{field}"
                    pages.append(Page(kind, remote, None, "autocomplete/", (*query, ("term", term))))
    return pages


def _site_pages() -> list[Page]:
    pages = []
    for pattern in admin.site.get_urls():
        if not isinstance(pattern, URLPattern) or pattern.name in SKIPPED_SITE_URLS:
            continue
        name = pattern.name
        if name == "index":
            pages.append(Page("index", None, None, ""))
        elif name == "app_list":
            labels = sorted({m._meta.app_label for m in admin.site._registry})
            pages += [Page("app index", None, None, f"{label}/") for label in labels]
        elif name in ("jsi18n", "password_change"):
            pages.append(Page(name, None, None, str(pattern.pattern)))
        elif name == "view_on_site":
            pages += [
                Page("view on site", _model_label(m), A, "r/<content_type_id>/<object_id>/")
                for m in admin.site._registry
            ]
        elif name == "autocomplete":
            pages += _autocomplete_pages()
        elif name is None and str(pattern.pattern).endswith("(?P<url>.*)$"):
            pages.append(Page("catch-all", None, None, "no-such-page/"))
        else:
            raise AssertionError(f"admin site URL {pattern.name!r} ({pattern.pattern}) is not in the matrix")
    return pages


PAGES = _site_pages() + _model_pages()


def _object(world, page: Page, user):
    objects = world.objects[page.model]
    if page.side == B and objects[B] is None:  # personal rows: the principal's own
        from sessions_app.models import ApiKey, Session

        model = {"sessions_app.session": Session, "sessions_app.apikey": ApiKey}[page.model]
        return model.objects.filter(user=user).first()
    return objects[page.side]


def url_of(world, page: Page, user) -> str:
    path = page.path
    if "<" in path:
        obj = _object(world, page, user)
        values = {"object_id": obj.pk, "id": obj.pk, "content_type_id": ContentType.objects.get_for_model(obj).pk}
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return ADMIN + path + ("?" + urlencode(page.query) if page.query else "")


def _project_scoped(page: Page) -> bool:
    if page.model is None:
        return False
    model = next(m for m in admin.site._registry if _model_label(m) == page.model)
    return isinstance(admin.site._registry[model], ProjectScopedMixin)


def _rules(principal: str, page: Page, user) -> tuple[bool, bool, bool]:
    """(may see A, A's object refused, may be offered writes)."""
    if user.is_superuser:
        return True, False, True
    sees_all = (
        page.model is not None and not _project_scoped(page) and user.has_perm(page.model.replace(".", ".view_", 1))
    )
    refused = page.side == A and not sees_all
    view_only = STAFF[principal][1]
    personal = bool({(page.model, None), (page.model, page.kind)} & OPEN_TO_ALL_STAFF)
    if view_only == "everywhere":
        writes = personal
    elif view_only == "project pages":
        writes = personal or not _project_scoped(page)
    else:
        writes = True
    return sees_all, refused, writes


def cases():
    for page in PAGES:
        for principal in STAFF:
            yield pytest.param(page, principal, id=f"{page} | {principal}")


@pytest.fixture(scope="module")
def logged_in(world, django_db_blocker) -> dict[str, Client]:
    """One signed-in client per principal; the sessions live in the module's transaction."""
    clients = {}
    with django_db_blocker.unblock():
        for principal, (name, _) in STAFF.items():
            clients[principal] = Client()
            clients[principal].force_login(world.users[name])
    return clients


@pytest.mark.parametrize(("page", "principal"), list(cases()))
def test_admin_matrix(world, logged_in, page, principal):
    user = world.users[STAFF[principal][0]]
    client = logged_in[principal]
    url = url_of(world, page, user)
    response = client.get(url)
    status = response.status_code
    text = response.content.decode("utf-8", "replace").lower()
    sees_a, refused, writes = _rules(principal, page, user)
    assert status < 500, f"{url} as {principal}: {status}"
    if user.is_superuser and (page.kind in READ_KINDS or page.kind.startswith("autocomplete")):
        assert status == 200, f"{url} as superuser: {status}"
    if page.kind in REDIRECT_KINDS:
        assert status == 302 and response["Location"] == url + "change/", (status, response.get("Location"))
    elif refused:
        assert status in (302, 403, 404), f"{url} as {principal}: A's object answered {status}"
        if status == 302:
            assert not response["Location"].startswith(url.split("?")[0]), response["Location"]
    if not sees_a:
        headers = {k: v for k, v in response.headers.items() if MARKER in f"{k}: {v}".lower()}
        assert MARKER not in text, f"{url} as {principal} ({status}) shows project A: {_around(text)}"
        assert not headers, f"{url} as {principal}: headers show project A: {headers}"
    if not writes and status == 200:
        offered = SAVE_BUTTONS.findall(SIDEBAR.sub("", text)) + _write_actions(text, page)
        assert not offered, f"{url} as {principal}: a view-only user is offered {sorted(set(offered))}"


def _write_actions(text: str, page: Page) -> list[str]:
    """The changelist actions offered that need more than the view permission."""
    found = re.search(r'<select name="action".*?</select>', text, re.S)
    if found is None or page.model is None:
        return []
    model_admin = next(a for m, a in admin.site._registry.items() if _model_label(m) == page.model)
    offered = []
    for name in re.findall(r'<option value="([^"]+)"', found.group(0)):
        action = model_admin.get_action(name)
        needs = set(getattr(action[0], "allowed_permissions", ()) or ("anything",)) if action else {"unknown"}
        if needs - {"view"}:
            offered.append(f"action {name}")
    return offered


def _around(text: str) -> str:
    at = text.find(MARKER)
    return re.sub(r"\s+", " ", text[max(0, at - 300) : at + 200])


def test_the_admin_matrix_covers_every_admin_url(world):
    """Every registered model has objects for every side, every URL parameter a value."""
    for model in admin.site._registry:
        label = _model_label(model)
        assert label in world.objects, f"{label}: the world has no objects for it (tests/authz/conftest.py)"
    for page in PAGES:
        params = set(re.findall(r"<(?:\w+:)?(\w+)>", page.path))
        assert params <= {"object_id", "id", "content_type_id"}, f"{page}: cannot fill {params}"
    kinds = {p.kind for p in PAGES}
    assert {"changelist", "add", "change", "history", "delete", "graph", "reports", "password_change"} <= kinds, kinds
    assert not [p for p in admin.site.get_urls() if not isinstance(p, URLPattern | URLResolver)]


# --------------------------------------------------------------------------- writes a page must not allow


def _keys_of(user):
    from sessions_app.models import ApiKey

    return set(ApiKey.objects.filter(user=user).values_list("pk", flat=True))


@pytest.mark.parametrize("principal", ["staff-view-only", "viewer-of-B", "member-of-B"])
def test_staff_cannot_make_a_key_for_another_user(world, logged_in, principal):
    """Issue 10, item 1: the add form must not hand out a working key of someone else."""
    root = world.users["superuser"]
    before = _keys_of(root)
    response = logged_in[principal].post(
        ADMIN + "sessions_app/apikey/add/",
        {"user": root.pk, "name": "escalated", "read_only": "", "expires_days": ""},
        follow=True,
    )
    assert response.status_code < 500
    assert _keys_of(root) == before, f"{principal} created an API key of the superuser"


@pytest.mark.parametrize("principal", ["staff-view-only", "viewer-of-B", "member-of-B"])
def test_staff_cannot_revoke_another_users_key(world, logged_in, principal):
    """Issue 10, item 1: the view permission is not "manages all keys"."""
    key = world.objects["sessions_app.apikey"][A]
    response = logged_in[principal].post(
        ADMIN + "sessions_app/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code < 500
    key.refresh_from_db()
    assert key.revoked_at is None, f"{principal} revoked {MARKER}-alice's key"


@pytest.mark.parametrize("principal", ["viewer-of-B", "member-of-B"])
def test_the_export_action_on_b_stories_names_no_story_of_a(world, logged_in, principal):
    import io
    import zipfile

    from stories.models import Story

    ids = list(Story.objects.filter(project__slug="proj-b").values_list("pk", flat=True))
    response = logged_in[principal].post(
        ADMIN + "stories/story/", {"action": "export_markdown_zip", "_selected_action": ids}
    )
    assert response.status_code == 200, response.status_code
    content = b"".join(response.streaming_content) if response.streaming else response.content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        text = " ".join(name + archive.read(name).decode() for name in archive.namelist()).lower()
    assert MARKER not in text, _around(text)


def test_saving_a_b_story_in_the_admin_keeps_its_links_to_a(world, logged_in):
    """DECISIONS 2: a member of B saving B-1's page as shown cannot drop A's links."""
    from stories.models import Story, StoryDependency
    from tests.admin.conftest import admin_form_data

    story = Story.objects.get(project__slug="proj-b", key="B-1")
    links = {
        (d.story_id, d.depends_on_id, d.type)
        for d in StoryDependency.objects.filter(story=story) | StoryDependency.objects.filter(depends_on=story)
    }
    client = logged_in["member-of-B"]
    url = ADMIN + f"stories/story/{story.pk}/change/"
    data = admin_form_data(client.get(url))
    data["title"] = "Saved by the matrix"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    story.refresh_from_db()
    assert story.title == "Saved by the matrix"
    after = {
        (d.story_id, d.depends_on_id, d.type)
        for d in StoryDependency.objects.filter(story=story) | StoryDependency.objects.filter(depends_on=story)
    }
    assert after == links


VIEW_ONLY = [name for name, (_, where) in STAFF.items() if where]


def _write_cases():
    for page in PAGES:
        if page.kind not in ("change", "delete") or (page.model, None) in OPEN_TO_ALL_STAFF:
            continue
        for principal in VIEW_ONLY:
            if STAFF[principal][1] == "project pages" and not _project_scoped(page):
                continue
            yield pytest.param(page, principal, id=f"POST {page} | {principal}")


def _form_as_the_superuser_sees_it(world, page: Page, user) -> dict:
    """The change form a browser would post (the superuser's page, so that it has every
    field), with its text fields changed, so that a permitted post would change the row."""
    from tests.admin.conftest import admin_form_data

    root = Client()
    root.force_login(world.users["superuser"])
    response = root.get(url_of(world, page, user))
    try:
        data = admin_form_data(response)
    except (KeyError, TypeError):  # a read-only admin: no form
        return {}
    for name in ("name", "title", "description", "notes", "user_agent"):
        if name in data:
            data[name] = "changed by the matrix"
    return data


@pytest.mark.parametrize(("page", "principal"), list(_write_cases()))
def test_view_only_staff_cannot_write_through_the_admin(world, page, principal):
    """Posting a change or a delete confirmation as a view-only principal changes nothing."""
    user = world.users[STAFF[principal][0]]
    client = Client()
    client.force_login(user)
    obj = _object(world, page, user)
    model = type(obj)
    before = model._default_manager.filter(pk=obj.pk).values().first()
    data = {"post": "yes"} if page.kind == "delete" else _form_as_the_superuser_sees_it(world, page, user)
    response = client.post(url_of(world, page, user), data)
    assert response.status_code < 500
    assert model._default_manager.filter(pk=obj.pk).values().first() == before, f"{principal} changed {obj!r}"


# --------------------------------------------------------------------------- the board's writes (POST)

# The board's two writes (stories.admin_board.board_move): a drag to another column and a
# reorder. Expected status per principal and side: A is hidden (404 before any story is
# read), B's viewer may look but not move (403), the staff without a role see no B (404).
BOARD_EXPECTED = {
    ("superuser", A): 200,
    ("superuser", B): 200,
    ("member-of-B", A): 404,
    ("member-of-B", B): 200,
    ("viewer-of-B", A): 404,
    ("viewer-of-B", B): 403,
    ("staff-view-only", A): 404,
    ("staff-view-only", B): 404,
}


def _board_post(world, side: str, op: str) -> tuple[str, dict, object]:
    from stories.models import Story

    project = world.objects["stories.project"][side]
    story = Story.objects.get(project=project, key=world.sides[side].key)
    data = {"key": story.key, "version": story.version}
    data.update({"status": "backlog"} if op == "move" else {"after": world.sides[side].free_key})
    return ADMIN + f"stories/project/{project.pk}/board/", data, story


def _story_row(story) -> dict:
    return type(story)._default_manager.filter(pk=story.pk).values("status_id", "rank", "version").first()


@pytest.mark.parametrize("op", ["move", "rank"])
@pytest.mark.parametrize(("principal", "side"), list(BOARD_EXPECTED))
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_board_posts(world, logged_in, principal, side, op, accept):
    """A board POST (JSON for the script, a form post without it) as each principal on
    B's board and hidden A's: refused ones change nothing and name no story of A."""
    url, data, story = _board_post(world, side, op)
    before = _story_row(story)
    response = logged_in[principal].post(url, data, HTTP_ACCEPT=accept)
    expected = BOARD_EXPECTED[(principal, side)]
    text = response.content.decode("utf-8", "replace").lower()
    if accept == "text/html" and expected in (200, 403):
        # Without JSON the board answers with a redirect back to itself and a message.
        assert response.status_code == 302 and response["Location"].startswith(url), response.status_code
    else:
        assert response.status_code == expected, f"{op} {url} as {principal}: {response.status_code} {text[:300]}"
    if expected == 200:
        assert _story_row(story) != before, f"{op} as {principal} changed nothing"
    else:
        assert _story_row(story) == before, f"{op} as {principal} ({response.status_code}) changed {story.key}"
    if principal != "superuser":
        assert MARKER not in text, f"{op} {url} as {principal}: {_around(text)}"
    if expected in (403, 404) and accept == "application/json":
        body = response.json() if expected == 403 else {}
        assert set(body) <= {"ok", "message"}, f"a refused {op} tells more than why: {body}"


@pytest.mark.parametrize("op", ["move", "rank"])
def test_b_board_does_not_reach_a_story_of_a(world, logged_in, op):
    """Naming A's story (or A's story as the rank anchor) on B's board answers like a key
    that does not exist, and changes nothing."""
    from stories.models import Story

    url, data, b_story = _board_post(world, B, op)
    a_story = Story.objects.get(project=world.objects["stories.project"][A], key=world.sides[A].key)
    before = (_story_row(a_story), _story_row(b_story))
    client = logged_in["member-of-B"]
    if op == "move":
        hidden, missing = {**data, "key": a_story.key}, {**data, "key": "NOPE-404"}
    else:
        hidden, missing = {**data, "after": a_story.key}, {**data, "after": "NOPE-404"}
    answers = []
    for posted in (hidden, missing):
        response = client.post(url, posted, HTTP_ACCEPT="application/json")
        body = response.json()
        body["message"] = body["message"].replace(a_story.key, "NOPE-404")
        answers.append((response.status_code, body))
    assert answers[0] == answers[1], answers
    assert answers[0][0] in (404, 409)
    assert (_story_row(a_story), _story_row(b_story)) == before


# --------------------------------------------------------------------------- import conflict resolution (POST)

RESOLUTIONS = {
    "keep": {"resolution": "keep"},
    "win": {"resolution": "win"},
    "rekey": {"resolution": "rekey", "new_key": "NEW-KEY-1"},
}


def _resolve_url(conflict) -> str:
    return ADMIN + f"stories/importconflict/{conflict.pk}/resolve/"


def _resolution_rows(conflict) -> tuple:
    from audit.models import AuditLog
    from stories.models import ImportConflict

    state = ImportConflict.objects.get(pk=conflict.pk).state
    audited = AuditLog.objects.filter(action="import_conflict.resolved", entity_id=str(conflict.pk)).count()
    return state, audited


@pytest.mark.parametrize("how", list(RESOLUTIONS))
@pytest.mark.parametrize("principal", ["staff-view-only", "viewer-of-B", "member-of-B"])
def test_resolving_a_conflict_of_a_is_a_404_and_changes_nothing(world, logged_in, principal, how):
    """Hidden like missing: A's conflict answers 404 to the resolution POST, nothing is
    resolved or audited, and the answer does not name A."""
    conflict = world.objects["stories.importconflict"][A]
    before = _resolution_rows(conflict)
    response = logged_in[principal].post(_resolve_url(conflict), RESOLUTIONS[how], follow=True)
    assert response.status_code == 404, response.status_code
    assert _resolution_rows(conflict) == before == ("open", 0)
    assert MARKER not in response.content.decode().lower(), _around(response.content.decode().lower())


@pytest.mark.parametrize("how", list(RESOLUTIONS))
def test_a_viewer_of_b_cannot_resolve_b_conflicts(world, logged_in, how):
    """The viewer sees B's conflict but the resolution needs the role that changes
    stories: refused with the service's reason as a message, nothing written."""
    conflict = world.objects["stories.importconflict"][B]
    response = logged_in["viewer-of-B"].post(_resolve_url(conflict), RESOLUTIONS[how], follow=True)
    assert response.status_code == 200, response.status_code
    assert _resolution_rows(conflict) == ("open", 0)
    text = response.content.decode()
    assert "not resolved" in text and MARKER not in text.lower()
    assert 'value="keep"' not in text  # and the page offers no resolution to a viewer


@pytest.mark.parametrize("how", list(RESOLUTIONS))
def test_a_member_of_b_resolves_b_conflicts_and_sees_nothing_of_a(world, logged_in, how):
    conflict = world.objects["stories.importconflict"][B]
    response = logged_in["member-of-B"].post(_resolve_url(conflict), RESOLUTIONS[how], follow=True)
    assert response.status_code == 200, response.status_code
    state, audited = _resolution_rows(conflict)
    assert (state, audited) == ({"keep": "kept_existing", "win": "parked_won", "rekey": "rekeyed"}[how], 1)
    assert MARKER not in response.content.decode().lower(), _around(response.content.decode().lower())


def test_the_resolution_post_needs_the_csrf_token(world):
    """The admin's CSRF protection covers the resolution endpoint."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["superuser"])
    conflict = world.objects["stories.importconflict"][B]
    response = client.post(_resolve_url(conflict), RESOLUTIONS["keep"])
    assert response.status_code == 403
    assert _resolution_rows(conflict) == ("open", 0)


def test_the_superuser_resolves_a_conflict_of_a(world, logged_in):
    conflict = world.objects["stories.importconflict"][A]
    response = logged_in["superuser"].post(_resolve_url(conflict), RESOLUTIONS["rekey"], follow=True)
    assert response.status_code == 200
    assert _resolution_rows(conflict) == ("rekeyed", 1)
