"""The world of the authorization matrix, built once per test module.

Project A is hidden from every principal but the superuser; project B is the principals'
project, and it is entangled with A: B's stories and A's are linked by `blocks` and
`relates` links in both directions (with a transitive chain B → A → B), and the two
projects depend on each other. Everything of A that a response could carry holds
MARKER: the project's slug, name, description and metadata, its stories' keys, titles,
bodies and metadata, a status, a backlog, an epic, its only member's username, a
transition note (status history and audit row) — and the audit rows of a deleted project
that had B's slug before B existed. A response to a principal other than the superuser
that contains MARKER is a leak.

The rows are created inside one transaction that is rolled back when the module ends;
each test runs in a savepoint inside it (pytest-django's `db`), so what a test writes is
undone before the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from sessions_app.backends import SessionStore
from sessions_app.models import ApiKey
from sessions_app.services import api_key_create, api_key_revoke
from stories import services
from stories.models import ProjectMember, Story, StoryDependency
from tests.factories import BacklogFactory, EpicFactory, MemberFactory, ProjectFactory, StoryFactory, UserFactory

# Searched case-insensitively; lower-case so it is a valid slug, upper-case in story keys.
MARKER = "zqxhidden"

A, B = "A", "B"
# The backlogs are sprints with dates, so the sprint reports (burndown / burnup) answer.
SPRINT = {
    "type": "sprint",
    "starts_on": timezone.localdate() - timedelta(days=7),
    "ends_on": timezone.localdate() + timedelta(days=6),
}


@dataclass
class Side:
    """The objects of one project that path parameters and bodies are filled from."""

    slug: str
    key: str  # a story with a link to the other project (and one inside its own)
    free_key: str  # a story `key` does not depend on yet
    backlog: str
    status: str  # a status no story uses, so it can be deleted
    epic: str
    username: str  # a member that an admin may change or remove
    dep_id: int  # a link of `key` to a story of its own project
    project_dependency_id: int  # the project link the side is about
    project_dependency_new: tuple[str, str]  # (from, to) of a project link that does not exist yet
    webhook_id: int = 0  # a webhook endpoint of the project
    delivery_id: int = 0  # one of its deliveries
    run_id: int = 0  # an import run of the project
    file_id: int = 0  # one of its files
    conflict_id: int = 0  # an open import conflict it parked


@dataclass
class World:
    sides: dict[str, Side]
    users: dict[str, object]  # principal name → user (None: no user)
    keys: dict[str, str]  # principal name → plaintext of its API key
    sessions: dict[str, str]  # username → the id of one of that user's sessions
    objects: dict[str, dict[str, object]] = field(default_factory=dict)  # admin: model label → side → object


def _session_for(user) -> str:
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    return store.session_key


def _key(user, name: str, **kwargs) -> tuple[ApiKey, str]:
    return api_key_create(actor=None, user=user, name=name, **kwargs)


def _link(story: Story, depends_on: Story, type: str) -> StoryDependency:
    return services.dependency_add(actor=None, story=story, depends_on=depends_on, type=type)


def _story(project, key: str, title: str, **kwargs) -> Story:
    return StoryFactory(project=project, key=key, title=title, actor=None, **kwargs)


def _deleted_project_with_b_slug(alice) -> None:
    """Item 3 of issue 10: audit rows follow slugs. A project called "proj-b" existed (with
    secrets) before today's B; its audit rows must not become B's."""
    old = ProjectFactory(slug="proj-b", name=f"{MARKER} old project", actor=alice)
    story = _story(old, f"{MARKER.upper()}-OLD", f"{MARKER} old story")
    services.story_transition(actor=alice, story=story, status="ready", notes=f"{MARKER} old note")
    services.project_delete(actor=alice, project=old)


def _project_a(alice) -> dict:
    up = MARKER.upper()
    a = ProjectFactory(
        slug=f"{MARKER}-a",
        name=f"{MARKER} project",
        description=f"{MARKER} description",
        metadata={"secret": MARKER},
        actor=alice,
    )
    services.status_create(actor=alice, project=a, slug=f"{MARKER}-status", name=f"{MARKER} status", category="started")
    services.status_create(actor=alice, project=a, slug=f"{MARKER}-spare", name=f"{MARKER} spare", category="started")
    backlog = BacklogFactory(project=a, slug=f"{MARKER}-backlog", name=f"{MARKER} backlog", actor=alice, **SPRINT)
    epic = EpicFactory(project=a, slug=f"{MARKER}-epic", name=f"{MARKER} epic", actor=alice)
    extra = {"backlog": backlog, "epic": epic, "metadata": {"secret": MARKER}, "owner": alice.username}
    a1 = _story(a, f"{up}-1", f"{MARKER} first", **extra)
    a2 = _story(a, f"{up}-2", f"{MARKER} second", **extra)
    a3 = _story(a, f"{up}-3", f"{MARKER} third", **extra)
    services.story_transition(actor=alice, story=a1, status=f"{MARKER}-status", notes=f"{MARKER} note")
    inner = _link(a2, a1, "blocks")
    a_member = UserFactory(username=f"{MARKER}-bob")
    MemberFactory(project=a, user=a_member, role="member", actor=alice)
    return {"project": a, "stories": (a1, a2, a3), "dep": inner, "backlog": backlog, "epic": epic}


def _project_b(owner, roles: dict[str, object]) -> dict:
    b = ProjectFactory(slug="proj-b", name="Project B", actor=owner)
    for role, user in roles.items():
        MemberFactory(project=b, user=user, role=role, actor=owner)
    extra = UserFactory(username="b-extra")
    MemberFactory(project=b, user=extra, role="member", actor=owner)
    services.status_create(actor=owner, project=b, slug="b-spare", name="B spare", category="started")
    backlog = BacklogFactory(project=b, slug="b-backlog", name="B backlog", actor=owner, **SPRINT)
    epic = EpicFactory(project=b, slug="b-epic", name="B epic", actor=owner)
    b1, b2, b3, b4 = (_story(b, f"B-{i}", f"B story {i}", backlog=backlog, epic=epic) for i in range(1, 5))
    inner = _link(b1, b3, "blocks")
    return {"project": b, "stories": (b1, b2, b3, b4), "dep": inner, "backlog": backlog, "epic": epic, "extra": extra}


def _visible_project(slug: str, owner, viewers) -> object:
    project = ProjectFactory(slug=slug, name=f"Project {slug}", actor=owner)
    for user in viewers:
        if user != owner:
            MemberFactory(project=project, user=user, role="viewer", actor=owner)
    return project


def _view_only_staff():
    """Staff holding every `view_*` permission except the auditor's (audit.view_auditlog
    sees the whole log by design) and no project role."""
    user = UserFactory(username="staff-view", is_staff=True)
    perms = Permission.objects.filter(codename__startswith="view_").exclude(codename="view_auditlog")
    user.user_permissions.set(perms)
    return user


def build_world() -> World:
    alice = UserFactory(username=f"{MARKER}-alice")
    _deleted_project_with_b_slug(alice)
    a = _project_a(alice)

    owner = UserFactory(username="b-owner", is_staff=True)
    roles = {
        "admin": UserFactory(username="b-admin", is_staff=True),
        "member": UserFactory(username="b-member", is_staff=True),
        "viewer": UserFactory(username="b-viewer", is_staff=True),
    }
    b = _project_b(owner, roles)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    outsider = UserFactory(username="outsider")
    staff_view = _view_only_staff()

    # Cross-project links, both ways, and a transitive chain B-2 → A-2 → B-1 → A-1.
    (a1, a2, a3), (b1, b2, b3, b4) = a["stories"], b["stories"]
    _link(b1, a1, "blocks")
    _link(a2, b1, "blocks")
    _link(b2, a2, "blocks")
    _link(b2, a1, "relates")
    _link(a1, b3, "relates")
    _link(b4, a3, "duplicates")

    b_people = [owner, *roles.values()]
    c = _visible_project("proj-c", owner, b_people)
    d = _visible_project("proj-d", owner, b_people)
    b_to_a = services.project_dependency_add(actor=None, from_project=b["project"], to_project=a["project"])
    services.project_dependency_add(actor=None, from_project=a["project"], to_project=b["project"], type="shares")
    b_to_c = services.project_dependency_add(actor=None, from_project=b["project"], to_project=c)

    users = {
        "anonymous": None,
        "bad-key": None,
        "expired-key": root,
        "revoked-key": root,
        "read-only-key": owner,
        "non-member": outsider,
        "staff-view-only": staff_view,
        "viewer": roles["viewer"],
        "member": roles["member"],
        "admin": roles["admin"],
        "owner": owner,
        "superuser": root,
    }
    keys = {"bad-key": "shk_" + "x" * 43}
    for name, user in users.items():
        if user is not None and name not in keys:
            keys[name] = _key(user, name, read_only=name == "read-only-key")[1]
    expired, keys["expired-key"] = _key(root, "expired", expires_days=1)
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, keys["revoked-key"] = _key(root, "revoked")
    api_key_revoke(actor=None, key=revoked)
    _key(alice, f"{MARKER} key")

    people = {u for u in users.values() if u is not None} | {alice}
    sessions = {user.username: _session_for(user) for user in people}

    sides = {
        A: Side(
            slug=a["project"].slug,
            key=a2.key,
            free_key=a3.key,
            backlog=a["backlog"].slug,
            status=f"{MARKER}-spare",
            epic=a["epic"].slug,
            username=f"{MARKER}-bob",
            dep_id=a["dep"].pk,
            project_dependency_id=b_to_a.pk,
            project_dependency_new=(a["project"].slug, d.slug),
        ),
        B: Side(
            slug=b["project"].slug,
            key=b1.key,
            free_key=b2.key,
            backlog=b["backlog"].slug,
            status="b-spare",
            epic=b["epic"].slug,
            username=b["extra"].username,
            dep_id=b["dep"].pk,
            project_dependency_id=b_to_c.pk,
            project_dependency_new=(b["project"].slug, d.slug),
        ),
    }
    world = World(sides=sides, users=users, keys=keys, sessions=sessions)
    world.objects = {**_admin_objects(a, b, alice, b_to_a, b_to_c), **_webhooks(sides, a, b, alice, owner)}
    world.objects.update(_imports(sides, a, b, alice, owner))
    return world


def _import_file(key: str, title: str, deps: str = "[]") -> bytes:
    return f"---\nid: {key}\ntitle: {title}\nstatus: draft\ndependencies: {deps}\n---\n# {key}: {title}\n".encode()


def _imports(sides: dict[str, Side], a: dict, b: dict, alice, owner) -> dict[str, dict[str, object]]:
    """An import run per project through the API's path (source api), each with a story
    written, a file that failed and a parked duplicate (A's paths, keys and texts carry
    MARKER). B's imported story also depends on a story of A, so the existing version a
    conflict shows must leave it out."""
    from stories.importer import Source, import_sources
    from stories.models import ImportConflict, ImportFile

    up = MARKER.upper()
    a_ref = f"{a['project'].slug}:{a['stories'][2].key}"
    plans = {
        A: (a["project"], alice, MARKER, f"{up}-API", f"{MARKER} imported", "[]"),
        B: (b["project"], owner, "b", "B-API", "B imported", f"[{{key: '{a_ref}', type: relates}}]"),
    }
    rows: dict[str, dict[str, object]] = {"stories.importfile": {}}  # runs, conflicts: _import_objects
    for side, (project, actor, folder, key, title, deps) in plans.items():
        files = [
            Source(path=f"{folder}-import/one.md", data=_import_file(key, title, deps)),
            Source(path=f"{folder}-import/two.md", data=_import_file(key, f"{title} again")),
            Source(path=f"{folder}-import/bad.md", data=f"---\nid: {key}-BAD\ntitle: [\n---\n".encode()),
        ]
        report = import_sources(files, project=project, actor=None if side == B else actor, source="api")
        conflict = ImportConflict.objects.get(run_id=report.run_id, state="open")
        bad = ImportFile.objects.get(run_id=report.run_id, outcome="failed")
        sides[side].run_id, sides[side].file_id, sides[side].conflict_id = report.run_id, bad.pk, conflict.pk
        rows["stories.importfile"][side] = bad
    return rows


def _webhooks(sides: dict[str, Side], a: dict, b: dict, alice, owner) -> dict[str, dict[str, object]]:
    """A webhook endpoint per project (A's URL carries MARKER), its test ping, and the
    outbox sequenced and fanned out, so feeds, streams and deliveries have rows of both."""
    from django_tasks_db.models import DBTaskResult

    from audit.models import OutboxEvent
    from events import outbox
    from events.services import endpoint_create, endpoint_ping

    hooks, pings = {}, {}
    for side, project, actor, path in ((A, a["project"], alice, MARKER), (B, b["project"], owner, "b")):
        hooks[side], _ = endpoint_create(actor=actor, project=project, url=f"http://127.0.0.1:9/{path}")
        pings[side] = endpoint_ping(actor=actor, endpoint=hooks[side])
        sides[side].webhook_id, sides[side].delivery_id = hooks[side].pk, pings[side].pk
    services.story_transition(actor=alice, story=a["stories"][2], status="ready", notes=f"{MARKER} after hooks")
    outbox.sequence_pending()
    outbox.fan_out()
    jobs = list(DBTaskResult.objects.order_by("enqueued_at"))
    return {
        "events.webhookendpoint": hooks,
        "events.delivery": pings,
        "audit.outboxevent": {
            A: OutboxEvent.objects.filter(project_id=a["project"].pk).order_by("id").last(),
            B: OutboxEvent.objects.filter(project_id=b["project"].pk).order_by("id").last(),
        },
        "django_tasks_database.dbtaskresult": {A: jobs[0], B: jobs[-1]},
    }


def _admin_objects(a: dict, b: dict, alice, b_to_a, b_to_c) -> dict[str, dict[str, object]]:
    """model label → {A: an object of A, B: one of B, "B>A": B's object linked to A}.
    Sessions and API keys are personal: their B entry is filled per principal (None)."""
    from django.contrib.auth.models import Group

    from audit.models import AuditLog
    from sessions_app.models import Session
    from stories.models import ProjectDependency, StatusHistory

    (a1, a2, _), (b1, *_) = a["stories"], b["stories"]
    pa, pb = a["project"], b["project"]
    audit_a = AuditLog.objects.filter(entity_type="story", entity_id=str(a1.pk)).order_by("id").last()
    audit_b = AuditLog.objects.filter(entity_type="story", entity_id=str(b1.pk)).order_by("id").last()
    return {
        "stories.project": {A: pa, B: pb},
        "stories.story": {A: a2, B: b1},
        "stories.backlog": {A: a["backlog"], B: b["backlog"]},
        "stories.status": {A: pa.statuses.get(slug=f"{MARKER}-status"), B: pb.statuses.get(slug="b-spare")},
        "stories.epic": {A: a["epic"], B: b["epic"]},
        "stories.projectmember": {
            A: ProjectMember.objects.get(project=pa, user__username=f"{MARKER}-bob"),
            B: ProjectMember.objects.get(project=pb, user=b["extra"]),
        },
        "stories.storydependency": {
            A: a["dep"],
            B: b["dep"],
            "B>A": StoryDependency.objects.get(story=b1, depends_on=a1),
        },
        "stories.projectdependency": {
            A: ProjectDependency.objects.get(from_project=pa, to_project=pb),
            B: b_to_c,
            "B>A": b_to_a,
        },
        "stories.statushistory": {
            A: StatusHistory.objects.filter(story=a1).order_by("id").last(),
            B: StatusHistory.objects.filter(story=b1).order_by("id").first(),
        },
        **_sync_objects(pa, pb, a1, b1),
        **_import_objects(pa, pb),
        "audit.auditlog": {A: audit_a, B: audit_b},
        "auth.user": {A: alice, B: b["extra"]},
        "auth.group": {A: Group.objects.create(name=f"{MARKER}-group"), B: Group.objects.create(name="b-group")},
        "sessions_app.session": {A: Session.objects.filter(user=alice).first(), B: None},
        "sessions_app.apikey": {A: ApiKey.objects.filter(user=alice).first(), B: None},
        **_login_attempts(alice.username, "b-member"),
    }


def _sync_objects(pa, pb, a1, b1) -> dict[str, dict[str, object]]:
    """Both projects linked to (empty) bare repositories, each with an open conflict."""
    import tempfile

    from dulwich.repo import Repo

    from stories.models import SyncConflict
    from stories.sync.links import sync_link_set

    root = tempfile.mkdtemp(prefix="authz-sync-")
    links = {}
    for side, project, story in ((A, pa, a1), (B, pb, b1)):
        path = f"{root}/{MARKER if side == A else 'b'}-repo.git"
        Repo.init_bare(path, mkdir=True).close()
        link = sync_link_set(actor=None, project=project, data={"repository": path, "folders": [f"{project.slug}"]})
        conflict = SyncConflict.objects.create(
            link=link, story=story, key=story.key, path=f"{project.slug}/{story.key}.md", remote_commit="0" * 40
        )
        links[side] = (link, conflict)
    return {
        "stories.synclink": {A: links[A][0], B: links[B][0]},
        "stories.syncconflict": {A: links[A][1], B: links[B][1]},
    }


def _import_objects(pa, pb) -> dict[str, dict[str, object]]:
    """An import run per project from a temp tree whose two files share one new id, so
    each run has a created file and a parked (open) conflict; A's paths and text carry
    MARKER."""
    import tempfile
    from pathlib import Path

    from stories.importer import import_stories
    from stories.models import ImportConflict

    objects: dict[str, dict[str, object]] = {"stories.importrun": {}, "stories.importconflict": {}}
    for side, project in ((A, pa), (B, pb)):
        name = MARKER if side == A else "b"
        key = f"{name.upper()}-IMP"
        root = Path(tempfile.mkdtemp(prefix="authz-import-")) / f"{name}-plans"
        root.mkdir()
        for n in (1, 2):
            text = f"---\nid: {key}\ntitle: {name} imported {n}\n---\n{name} body {n}\n"
            (root / f"{name}-{n}.md").write_text(text, encoding="utf-8")
        report = import_stories([root], project=project, actor=None)
        objects["stories.importrun"][side] = project.import_runs.get(pk=report.run_id)
        objects["stories.importconflict"][side] = ImportConflict.objects.get(project=project, state="open")
    return objects


def _login_attempts(*usernames: str) -> dict[str, dict[str, object]]:
    """django-axes' records of admin logins (attempts, failures, logins), one per side."""
    from django.apps import apps

    if not apps.is_installed("axes"):
        return {}
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    now = timezone.now()
    common = {"user_agent": "matrix", "ip_address": "192.0.2.1", "http_accept": "*/*", "path_info": "/admin/login/"}
    rows = {}
    for model, extra in (
        (AccessAttempt, {"get_data": "", "post_data": "", "failures_since_start": 1}),
        (AccessFailureLog, {}),
        (AccessLog, {}),
    ):
        made = [model.objects.create(username=name, attempt_time=now, **common, **extra) for name in usernames]
        rows[model._meta.label_lower] = dict(zip((A, B), made, strict=True))
    return rows


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build_world()
        except BaseException:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)
