"""A large project for the graph tests, written in bulk (a few statements, not 1,500
service calls): `stories` stories in three epics and two backlogs, in every state, and
`links` acyclic `blocks` links (each story waits for some of the 12 before it)."""

from __future__ import annotations

import random
from decimal import Decimal

from stories.models import Backlog, Epic, Status, Story, StoryDependency
from tests.factories import ProjectFactory

STATUS_CYCLE = ["draft", "ready", "in_progress", "done", "backlog", "ready", "blocked", "done", "cancelled", "review"]


def big_project(*, owner, slug: str = "big", stories: int = 500, links: int = 1000, seed: int = 12):
    project = ProjectFactory(slug=slug, name=f"Big {slug}", actor=owner)
    statuses = {s.slug: s for s in Status.objects.filter(project=project)}
    epics = Epic.objects.bulk_create([Epic(project=project, slug=f"epic-{i}", name=f"Epic {i}") for i in range(3)])
    backlogs = Backlog.objects.bulk_create(
        [Backlog(project=project, slug=f"backlog-{i}", name=f"Backlog {i}") for i in range(2)]
    )
    rows = Story.objects.bulk_create(
        [
            Story(
                project=project,
                key=f"BIG-{i:03d}",
                title=f"Story number {i} with a title long enough to need more than one line",
                status=statuses[STATUS_CYCLE[i % len(STATUS_CYCLE)]],
                epic=epics[i % 3],
                backlog=backlogs[i % 2],
                points_min=Decimal(i % 5 + 1),
                points_max=Decimal(i % 5 + 1),
            )
            for i in range(stories)
        ]
    )
    rnd = random.Random(seed)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < min(links, stories * 6):
        later = rnd.randrange(1, stories)
        pairs.add((later, max(0, later - 1 - rnd.randrange(12))))
    StoryDependency.objects.bulk_create(
        [StoryDependency(story=rows[a], depends_on=rows[b], type=StoryDependency.Type.BLOCKS) for a, b in sorted(pairs)]
    )
    return project, rows
