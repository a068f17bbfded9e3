"""A world with one cross-project link, for the visibility tests (README "Visibility").

Project "zz-alpha" holds SEC-1 ("Quantum vault rekeying", in progress); project
"beta-proj" holds B-1, B-2 and B-3. B-1 `blocks`-depends on SEC-1, and SEC-1 on B-2.
"bee" is a member of beta-proj only, so SEC-1's key, title, status and project must
never reach bee: every surface shows a placeholder instead."""

from __future__ import annotations

from dataclasses import dataclass

from stories import services
from stories.models import Story
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

# What must never appear in anything bee reads.
MARKERS = ("zz-alpha", "SEC-1", "Quantum vault rekeying", "Alpha Project")


@dataclass
class World:
    owner: object
    bee: object
    alpha: object
    beta: object
    secret: Story
    b1: Story
    b2: Story
    b3: Story


def build_world(*, bee_is_staff: bool = False) -> World:
    owner = UserFactory(username="boss")
    bee = UserFactory(username="bee", is_staff=bee_is_staff)
    alpha = ProjectFactory(slug="zz-alpha", name="Alpha Project", actor=owner)
    beta = ProjectFactory(slug="beta-proj", name="Beta", actor=owner)
    MemberFactory(project=beta, user=bee, role="member", actor=owner)
    secret = StoryFactory(project=alpha, key="SEC-1", title="Quantum vault rekeying", actor=owner)
    services.story_transition(actor=owner, story=secret, status="in_progress", enforce_workflow=False)
    b1 = StoryFactory(project=beta, key="B-1", title="Beta one", status="ready", actor=owner)
    b2 = StoryFactory(project=beta, key="B-2", title="Beta two", status="ready", actor=owner)
    b3 = StoryFactory(project=beta, key="B-3", title="Beta three", status="ready", actor=owner)
    services.dependency_add(actor=owner, story=b1, depends_on=secret)
    services.dependency_add(actor=owner, story=secret, depends_on=b2)
    return World(owner, bee, alpha, beta, secret, b1, b2, b3)


def assert_no_marker(text: str | bytes, where: str = "") -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} leaked {where}: {text[:600]}"
