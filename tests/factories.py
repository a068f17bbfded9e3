"""Test factories (they live in stories.factories so seed_demo can share them)."""

from stories.factories import (  # noqa: F401
    BacklogFactory,
    DependencyFactory,
    EpicFactory,
    MemberFactory,
    ProjectFactory,
    StoryFactory,
    UserFactory,
)
