"""factory-boy factories that create through the service layer, so objects made for
tests and demo data get their workflow, history and audit rows like real ones.
Shared by the test suite (tests/factories.py) and `manage.py seed_demo`."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from . import services
from .models import Backlog, Epic, Project, ProjectMember, Story, StoryDependency


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    description = ""

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.project_create(actor=actor, **kwargs)


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectMember

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = ProjectMember.Role.MEMBER

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.project_member_set(actor=actor, **kwargs)


class BacklogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Backlog

    project = factory.SubFactory(ProjectFactory)
    slug = factory.Sequence(lambda n: f"backlog-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.backlog_create(actor=actor, **kwargs)


class EpicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Epic

    project = factory.SubFactory(ProjectFactory)
    slug = factory.Sequence(lambda n: f"epic-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.epic_create(actor=actor, **kwargs)


class StoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Story

    project = factory.SubFactory(ProjectFactory)
    key = factory.Sequence(lambda n: f"ST-{n:03d}")
    title = factory.Sequence(lambda n: f"Story number {n}")
    body = factory.LazyAttribute(lambda o: f"# {o.key}: {o.title}\n\nSome details.\n")

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.story_create(actor=actor, **kwargs)


class DependencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoryDependency

    story = factory.SubFactory(StoryFactory)
    depends_on = factory.SubFactory(StoryFactory, project=factory.SelfAttribute("..story.project"))
    type = StoryDependency.Type.BLOCKS

    @classmethod
    def _create(cls, model_class, *args, actor=None, **kwargs):
        return services.dependency_add(actor=actor, **kwargs)
