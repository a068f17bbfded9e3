"""Nested project resources (backlogs, workflow statuses, epics, members) and
project-to-project dependencies. Reads need the viewer role; writes call services,
which check the role again (admin for members / backlogs / workflow)."""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from stories import selectors, services
from stories.models import Backlog, Epic, Project, ProjectDependency, ProjectMember, Status
from storyhub.errors import ConflictError, NotFoundError

from .permissions import get_project_for, require_role
from .serializers import StrictSerializer
from .views import validated, versioned_write
from .views import with_etag as _with_etag

VERSION = serializers.IntegerField(
    required=False, min_value=1, help_text="the version you read; a stale one answers 409 (or send If-Match)"
)


# --------------------------------------------------------------------------- backlogs


class BacklogInput(StrictSerializer):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(choices=Backlog.Type.choices, required=False)
    status = serializers.ChoiceField(choices=Backlog.Status.choices, required=False)
    metadata = serializers.DictField(required=False)
    settings = serializers.DictField(required=False)
    starts_on = serializers.DateField(required=False, allow_null=True, help_text="a sprint's first day")
    ends_on = serializers.DateField(required=False, allow_null=True, help_text="a sprint's last day")
    version = VERSION


class BacklogOut(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Backlog.Type.choices)
    status = serializers.ChoiceField(choices=Backlog.Status.choices)
    metadata = serializers.DictField()
    settings = serializers.DictField()
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)
    version = serializers.IntegerField()


def backlog_payload(b: Backlog) -> dict:
    return {
        "slug": b.slug,
        "name": b.name,
        "type": b.type,
        "status": b.status,
        "metadata": b.metadata,
        "settings": b.settings,
        "starts_on": b.starts_on.isoformat() if b.starts_on else None,
        "ends_on": b.ends_on.isoformat() if b.ends_on else None,
        "version": b.version,
    }


class StatusInput(StrictSerializer):
    slug = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100)
    category = serializers.ChoiceField(choices=Status.Category.choices)
    order = serializers.IntegerField(required=False, min_value=0)
    allowed_transitions = serializers.ListField(child=serializers.SlugField(), required=False)
    version = VERSION


class StatusOut(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=Status.Category.choices)
    order = serializers.IntegerField()
    allowed_transitions = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField()


def status_payload(st: Status) -> dict:
    return {
        "slug": st.slug,
        "name": st.name,
        "category": st.category,
        "order": st.order,
        "allowed_transitions": st.allowed_transitions,
        "version": st.version,
    }


class EpicInput(StrictSerializer):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    version = VERSION


class EpicOut(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    version = serializers.IntegerField()


def epic_payload(e: Epic) -> dict:
    return {"slug": e.slug, "name": e.name, "description": e.description, "version": e.version}


# (model, related manager, payload, input, output, create service, update service, delete service, write role)
RESOURCES = {
    "backlog": (Backlog, backlog_payload, BacklogInput, BacklogOut, "backlog", "admin"),
    "status": (Status, status_payload, StatusInput, StatusOut, "status", "admin"),
    "epic": (Epic, epic_payload, EpicInput, EpicOut, "epic", "member"),
}


# Collection words in operation ids, singular → plural, where adding "s" is wrong. (Here, not
# in .schema: importing drf_spectacular's generator at start-up costs ~0.2 s.)
PLURALS = {"status": "statuses"}


def _make_views(kind: str):
    model, payload, input_cls, out_cls, prefix, role = RESOURCES[kind]
    create = getattr(services, f"{prefix}_create")
    update = getattr(services, f"{prefix}_update")
    delete = getattr(services, f"{prefix}_delete")
    ordering = ["order", "id"] if model is Status else ["slug"]

    plural = PLURALS.get(kind, f"{kind}s")

    class ListView(APIView):
        versioned_create = True

        @extend_schema(responses=out_cls(many=True), operation_id=f"projects_{plural}_list")
        def get(self, request, slug):
            project = get_project_for(request, slug)
            return Response([payload(o) for o in model.objects.filter(project=project).order_by(*ordering)])

        @extend_schema(request=input_cls, responses={201: out_cls}, operation_id=f"projects_{plural}_create")
        def post(self, request, slug):
            project = get_project_for(request, slug)
            require_role(request, project, role)
            data = validated(input_cls, request.data)
            data.pop("version", None)
            obj = create(actor=request.user, project=project, **data)
            return _with_etag(Response(payload(obj), status=http.HTTP_201_CREATED), obj)

    class DetailView(APIView):
        versioned = True

        def _get(self, request, slug, item):
            project = get_project_for(request, slug)
            obj = model.objects.filter(project=project, slug=item).select_related("project").first()
            if obj is None:
                raise Http404
            return obj

        @extend_schema(responses=out_cls, operation_id=f"projects_{plural}_retrieve")
        def get(self, request, slug, item):
            obj = self._get(request, slug, item)
            return _with_etag(Response(payload(obj)), obj)

        @extend_schema(request=input_cls, responses=out_cls, operation_id=f"projects_{plural}_partial_update")
        def patch(self, request, slug, item):
            obj = self._get(request, slug, item)
            require_role(request, obj.project, role)
            data = validated(input_cls, request.data, partial=True)
            with versioned_write(request, obj, data.pop("version", None)) as expected:
                obj = update(actor=request.user, **{prefix: obj}, data=data, expected_version=expected)
            return _with_etag(Response(payload(obj)), obj)

        @extend_schema(responses={204: None}, operation_id=f"projects_{plural}_destroy")
        def delete(self, request, slug, item):
            obj = self._get(request, slug, item)
            require_role(request, obj.project, "admin")
            with versioned_write(request, obj) as expected:
                delete(actor=request.user, **{prefix: obj}, expected_version=expected)
            return Response(status=http.HTTP_204_NO_CONTENT)

    ListView.__name__ = f"{kind.title()}ListView"
    DetailView.__name__ = f"{kind.title()}DetailView"
    return ListView, DetailView


BacklogListView, BacklogDetailView = _make_views("backlog")
StatusListView, StatusDetailView = _make_views("status")
EpicListView, EpicDetailView = _make_views("epic")


# --------------------------------------------------------------------------- members


class MemberInput(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)


class MemberRoleInput(StrictSerializer):
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices, required=False)
    version = VERSION


class MemberOut(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()


def member_payload(m: ProjectMember) -> dict:
    return {"username": m.user.get_username(), "role": m.role, "created_at": m.created_at, "version": m.version}


@contextmanager
def _owner_rule_as_conflict():
    """ "A project must keep at least one owner": a well-formed request that conflicts
    with the project's state, so 409 rather than 400."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ConflictError("The change conflicts with the project's members.", details=exc.message_dict) from None


class MemberListView(APIView):
    versioned_create = True

    @extend_schema(responses=MemberOut(many=True))
    def get(self, request, slug):
        project = get_project_for(request, slug)
        members = ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username")
        return Response([member_payload(m) for m in members])

    @extend_schema(request=MemberInput, responses={201: MemberOut})
    def post(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "admin")
        data = validated(MemberInput, request.data)
        user = get_user_model().objects.filter(username=data["username"], is_active=True).first()
        if user is None:
            message = f"No active user '{data['username']}'."
            raise NotFoundError(message, details={"username": [message]})
        member = services.project_member_set(actor=request.user, project=project, user=user, role=data["role"])
        return _with_etag(Response(member_payload(member), status=http.HTTP_201_CREATED), member)


class MemberDetailView(APIView):
    versioned = True

    def _get(self, request, slug, username):
        project = get_project_for(request, slug)
        member = (
            ProjectMember.objects.filter(project=project, user__username=username)
            .select_related("user", "project")
            .first()
        )
        if member is None:
            raise Http404
        return member

    @extend_schema(responses=MemberOut)
    def get(self, request, slug, username):
        member = self._get(request, slug, username)
        return _with_etag(Response(member_payload(member)), member)

    @extend_schema(request=MemberRoleInput, responses=MemberOut)
    def patch(self, request, slug, username):
        member = self._get(request, slug, username)
        require_role(request, member.project, "admin")
        data = validated(MemberRoleInput, request.data)
        with versioned_write(request, member, data.get("version")) as expected:
            if "role" not in data and expected is None:
                return _with_etag(Response(member_payload(member)), member)  # nothing to change or check
            role = data.get("role", member.role)
            with _owner_rule_as_conflict():
                member = services.project_member_set(
                    actor=request.user, project=member.project, user=member.user, role=role, expected_version=expected
                )
        return _with_etag(Response(member_payload(member)), member)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, username):
        member = self._get(request, slug, username)
        require_role(request, member.project, "admin")
        with versioned_write(request, member) as expected, _owner_rule_as_conflict():
            services.project_member_remove(actor=request.user, member=member, expected_version=expected)
        return Response(status=http.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- project dependencies


class ProjectDependencyInput(StrictSerializer):
    from_project = serializers.SlugField()
    to_project = serializers.SlugField()
    type = serializers.ChoiceField(choices=ProjectDependency.Type.choices, default=ProjectDependency.Type.DEPENDS)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectDependencyOut(serializers.Serializer):
    id = serializers.IntegerField()
    from_project = serializers.CharField()
    to_project = serializers.CharField()
    type = serializers.ChoiceField(choices=ProjectDependency.Type.choices)
    description = serializers.CharField()


def project_dependency_payload(link: ProjectDependency) -> dict:
    return {
        "id": link.pk,
        "from_project": link.from_project.slug,
        "to_project": link.to_project.slug,
        "type": link.type,
        "description": link.description,
    }


def _visible_project(request, slug: str, field: str) -> Project:
    try:
        return get_project_for(request, slug)
    except Http404:
        raise NotFoundError(f"No project '{slug}'.", details={field: [f"No project '{slug}'."]}) from None


class ProjectDependencyListView(APIView):
    @extend_schema(responses=ProjectDependencyOut(many=True))
    def get(self, request):
        visible = selectors.project_list_for_user(user=request.user)
        links = (
            ProjectDependency.objects.filter(from_project__in=visible, to_project__in=visible)
            .select_related("from_project", "to_project")
            .order_by("id")
        )
        return Response([project_dependency_payload(link) for link in links])

    @extend_schema(request=ProjectDependencyInput, responses={201: ProjectDependencyOut})
    def post(self, request):
        data = validated(ProjectDependencyInput, request.data)
        from_project = _visible_project(request, data["from_project"], "from_project")
        to_project = _visible_project(request, data["to_project"], "to_project")
        require_role(request, from_project, "admin")
        link = services.project_dependency_add(
            actor=request.user,
            from_project=from_project,
            to_project=to_project,
            type=data["type"],
            description=data["description"],
        )
        return Response(project_dependency_payload(link), status=http.HTTP_201_CREATED)


class ProjectDependencyDetailView(APIView):
    def _get(self, request, pk):
        visible = selectors.project_list_for_user(user=request.user)
        link = (
            ProjectDependency.objects.filter(pk=pk, from_project__in=visible, to_project__in=visible)
            .select_related("from_project", "to_project")
            .first()
        )
        if link is None:
            raise Http404
        return link

    @extend_schema(responses=ProjectDependencyOut)
    def get(self, request, pk):
        return Response(project_dependency_payload(self._get(request, pk)))

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        link = self._get(request, pk)
        require_role(request, link.from_project, "admin")
        services.project_dependency_remove(actor=request.user, link=link)
        return Response(status=http.HTTP_204_NO_CONTENT)
