"""Deterministic demo data for `make run`, created once: a second run changes no row."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.context import write_context
from stories import services
from stories.factories import BacklogFactory, EpicFactory, MemberFactory, ProjectFactory, StoryFactory, UserFactory
from stories.fields import PRIORITY_BY_WORD
from stories.importer import import_stories
from stories.models import Project, ProjectMember, Story
from storyhub.errors import BlockedError

DEMO_PROJECTS = [
    ("plan-pipe", "Plan Pipe", "PP", 80),
    ("story-api", "Story API", "API", 70),
    ("infra", "Infrastructure", "INF", 50),
]
EPICS = ["infrastructure", "api", "admin", "import-export", "reporting"]
LABELS = ["database", "backend", "frontend", "docs", "security", "performance", "ux"]
ESTIMATES = ["1sp", "2sp", "3sp", "5sp", "1-2sp", "8", ""]
TITLES = [
    "Set up {x}",
    "Add {x} endpoint",
    "Document {x}",
    "Harden {x}",
    "Speed up {x}",
    "Review {x}",
    "Test {x}",
]
# The story files of the original requests (docs/seed-stories/), imported like a user's
# files. 000 and 002 are two versions of INF-013, so they go to different projects.
SEED_STORY_DIR = Path(settings.BASE_DIR) / "docs" / "seed-stories"
SEED_STORY_PROJECT = ("seed-stories", "Seed story files")
SEED_STORY_PROJECTS = {"002_3c9acf64790a9b98.txt": "plan-pipe"}

THINGS = [
    "schema",
    "sessions",
    "audit log",
    "backlog view",
    "story import",
    "dependency graph",
    "health checks",
    "backups",
    "API keys",
    "search",
]


class Command(BaseCommand):
    help = "Create demo projects, users and ~200 stories with dependencies and history, once (a second run changes nothing)."

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        with write_context(source="cli"):
            admin = User.objects.filter(username=username).first()
            if admin is None:
                admin = User.objects.create_superuser(username, f"{username}@example.com", password)
                self.stdout.write(f"Created superuser '{username}'.")
            # Created once, never refreshed: a second run must not touch what a user has
            # changed since (a re-import of the seed files put an edited story back to the
            # file's status), so each part is made only when its project does not exist.
            created: set[str] = set()
            if not Project.objects.filter(slug=DEMO_PROJECTS[0][0]).exists():
                self._build(admin)
                created.update(slug for slug, *_ in DEMO_PROJECTS)
            created.update(self._import_seed_stories(admin, created))
            if not created:
                self.stdout.write("Demo data already present; nothing to do (it is created once, never refreshed).")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready. Admin login: {username} / {password if 'DEMO_ADMIN_PASSWORD' not in os.environ else '(from DEMO_ADMIN_PASSWORD)'}"
            )
        )

    def _import_seed_stories(self, admin, created: set[str]) -> set[str]:
        """Import docs/seed-stories/ into the projects made by this run (`created`, plus the
        seed project when it does not exist yet); returns the projects it made."""
        files = sorted(SEED_STORY_DIR.glob("*.txt")) if SEED_STORY_DIR.is_dir() else []
        if not files:
            return set()
        slug, name = SEED_STORY_PROJECT
        made: set[str] = set()
        if not Project.objects.filter(slug=slug).exists():
            made.add(slug)
            project = ProjectFactory(slug=slug, name=name, actor=admin, description="The seed requests' story files.")
            for user, role in (("planner", "admin"), ("developer", "member"), ("auditor", "viewer")):
                member = get_user_model().objects.filter(username=user).first()
                if member is not None:
                    MemberFactory(project=project, user=member, role=role, actor=admin)
        groups: dict[str, list[Path]] = defaultdict(list)
        for path in files:
            groups[SEED_STORY_PROJECTS.get(path.name, slug)].append(path)
        for target, paths in groups.items():
            project = Project.objects.filter(slug=target).first()
            if project is None or target not in created | made:
                continue
            report = import_stories(paths, project=project, actor=admin)
            counts = report.as_dict()
            self.stdout.write(
                f"  {target}: seed story files — {counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged, {counts['failed']} failed"
            )
            for result in report.files:
                if result.outcome == "failed":
                    self.stdout.write(self.style.ERROR(f"    {result.path}: {result.reason}"))
        return made

    @transaction.atomic
    def _build(self, admin):
        rng = random.Random(20251124)
        planner = UserFactory(username="planner", is_staff=True)
        developer = UserFactory(username="developer")
        viewer = UserFactory(username="auditor", is_staff=True)
        all_stories: list[Story] = []
        for slug, name, prefix, count in DEMO_PROJECTS:
            project = ProjectFactory(slug=slug, name=name, actor=admin, description=f"Demo project {name}.")
            MemberFactory(project=project, user=planner, role=ProjectMember.Role.ADMIN, actor=admin)
            MemberFactory(project=project, user=developer, role=ProjectMember.Role.MEMBER, actor=admin)
            MemberFactory(project=project, user=viewer, role=ProjectMember.Role.VIEWER, actor=admin)
            backlogs = [
                BacklogFactory(project=project, slug="product", name="Product backlog", actor=admin),
                BacklogFactory(project=project, slug="sprint-1", name="Sprint 1", type="sprint", actor=admin),
            ]
            epics = [EpicFactory(project=project, slug=e, name=e.replace("-", " ").title(), actor=admin) for e in EPICS]
            stories: list[Story] = []
            for n in range(1, count + 1):
                title = rng.choice(TITLES).format(x=rng.choice(THINGS))
                story = StoryFactory(
                    project=project,
                    key=f"{prefix}-{n:03d}",
                    title=title,
                    actor=planner,
                    backlog=rng.choice(backlogs),
                    epic=rng.choice(epics),
                    priority=rng.choice(list(PRIORITY_BY_WORD)),
                    estimate=rng.choice(ESTIMATES),
                    labels=sorted(rng.sample(LABELS, rng.randint(0, 3))),
                    author="planning-agent",
                    owner="implementation-team",
                    body=f"# {prefix}-{n:03d}: {title}\n\n## User Story\nAs a planner I want {title.lower()}.\n",
                )
                # Dependencies only point at earlier stories, so the graph stays acyclic.
                for target in rng.sample(stories, min(len(stories), rng.choice([0, 1, 1, 2, 3]))):
                    services.dependency_add(actor=planner, story=story, depends_on=target)
                stories.append(story)
            # Walk the earliest stories through the workflow so there is history to see; a
            # story stops where the blocked guard stops it (a blocker not done yet).
            for story in stories[: count // 2]:
                for status in ("backlog", "ready", "in_progress", "review", "done")[: rng.randint(1, 5)]:
                    try:
                        story = services.story_transition(actor=developer, story=story, status=status, notes="demo")
                    except BlockedError:
                        break
            all_stories.extend(stories)
            self.stdout.write(f"  {slug}: {count} stories")
        # A few cross-project links.
        by_key = {s.key: s for s in all_stories}
        services.dependency_add(actor=admin, story=by_key["PP-010"], depends_on=by_key["API-004"])
        services.dependency_add(actor=admin, story=by_key["API-020"], depends_on=by_key["INF-013"])
        services.project_dependency_add(
            actor=admin,
            from_project=Project.objects.get(slug="plan-pipe"),
            to_project=Project.objects.get(slug="story-api"),
            type="integrates",
        )
        self.stdout.write("  users: planner (admin role), developer (member), auditor (viewer); password pw-for-tests")
