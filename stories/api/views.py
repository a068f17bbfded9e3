"""Thin API views: reads use selectors / hand-built payloads, every write calls a
service in stories.services."""

from __future__ import annotations

import base64
import binascii
import contextlib

import orjson
from django.db import connection, transaction
from django.db.models import Q
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from stories import selectors, services
from stories.models import Backlog, Epic, Project, ProjectMember, Story
from stories.permissions import project_role
from storyhub.errors import NotFoundError, PreconditionFailed, StaleVersionError

from . import serializers as s
from .filters import ORDERINGS, StoryFilter, cursor_value, keyset_filter
from .payloads import project_page_rows, story_list_payload, story_payload, story_rows_by_key, story_values
from .permissions import get_project_for, project_access, require_role

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


# --------------------------------------------------------------------------- helpers


def etag_for(version: int, pk: int) -> str:
    return f'"{pk}-{version}"'


def check_if_match(request, pk: int, version: int) -> int | None:
    """412 when If-Match names another version. Returns the expected version to pass
    to the service (so the check is repeated under the row lock)."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if etag_for(version, pk) not in tags:
        raise PreconditionFailed(
            "If-Match does not name the current version; reload and apply your change again.",
            details={"If-Match": [f"stale: current ETag is {etag_for(version, pk)}"]},
            extra={"current_version": version},
            etag=etag_for(version, pk),
        )
    return version


@contextlib.contextmanager
def stale_if_match_is_412(body_version: int | None, header_version: int | None, pk: int | None = None):
    """A writer whose If-Match passed check_if_match can still lose the race under the
    service's row lock: that is a failed precondition too (412), not a 409."""
    try:
        yield
    except StaleVersionError as exc:
        if body_version is None and header_version is not None:
            current = exc.extra.get("current_version")
            etag = etag_for(current, pk) if pk is not None and current is not None else None
            raise PreconditionFailed(
                exc.message, details={"If-Match": [exc.message]}, extra=exc.extra, etag=etag
            ) from exc
        raise


@contextlib.contextmanager
def versioned_write(request, obj, body_version: int | None = None):
    """If-Match (412) or a `version` in the body (409) for a write to `obj`, which has a
    `version` field: yields the expected version to pass to the service, which checks it
    again under the row lock."""
    header_version = check_if_match(request, obj.pk, obj.version)
    with stale_if_match_is_412(body_version, header_version, obj.pk):
        yield body_version if body_version is not None else header_version


def with_etag(response: Response, obj) -> Response:
    """The ETag of a versioned object (the same form for every resource)."""
    response["ETag"] = etag_for(obj.version, obj.pk)
    return response


def parse_page_size(request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({"page_size": ["Give a whole number."]}) from None
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"Give a number from 1 to {MAX_PAGE_SIZE}."]})
    return value


def encode_cursor(value, last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, last_id])).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple:
    try:
        value, last_id = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id < 2**63:
            raise ValueError
        if isinstance(value, list | dict):
            raise ValueError
        return value, last_id
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationError({"cursor": ["Invalid cursor."]}) from None


def project_payload(project: Project, role: str | None) -> dict:
    return {
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "repository_url": project.repository_url,
        "submodule_path": project.submodule_path,
        "status": project.status,
        "metadata": project.metadata,
        "settings": project.settings,
        "version": project.version,
        "role": role,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


def get_story(project: Project, key: str) -> Story:
    story = Story.objects.select_related("project", "status").filter(project=project, key=key).first()
    if story is None:
        raise Http404
    return story


def resolve_refs(project: Project, data: dict) -> dict:
    """Backlog / epic slugs → objects of this project."""
    for name, model in (("backlog", Backlog), ("epic", Epic)):
        if name in data and data[name] is not None:
            found = model.objects.filter(project=project, slug=data[name]).first()
            if found is None:
                message = f"No {name} '{data[name]}' in project '{project.slug}'."
                raise NotFoundError(message, details={name: [message]})
            data[name] = found
    return data


# --------------------------------------------------------------------------- projects


class ProjectListView(APIView):
    versioned_create = True  # schema: the POST answers the new project's ETag

    @extend_schema(responses=s.ProjectSerializer(many=True), operation_id="projects_list")
    def get(self, request):
        projects = selectors.project_list_for_user(user=request.user).order_by("slug")
        roles = dict(ProjectMember.objects.filter(user_id=request.user.pk).values_list("project_id", "role"))
        superuser = request.user.is_superuser
        return Response([project_payload(p, "owner" if superuser else roles.get(p.pk)) for p in projects])

    @extend_schema(request=s.ProjectInputSerializer, responses={201: s.ProjectSerializer})
    def post(self, request):
        require_write(request)
        data = validated(s.ProjectInputSerializer, request.data)
        data.pop("version", None)
        project = services.project_create(actor=request.user, **data)
        return with_etag(Response(project_payload(project, "owner"), status=http.HTTP_201_CREATED), project)


def require_write(request) -> None:
    from .permissions import is_read_only_key

    if is_read_only_key(request):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("This API key is read-only.")


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ProjectDetailView(APIView):
    versioned = True  # schema: ETag on responses, If-Match on writes

    @extend_schema(responses=s.ProjectSerializer)
    def get(self, request, slug):
        project, role = project_access(request, slug)
        return with_etag(Response(project_payload(project, role)), project)

    @extend_schema(request=s.ProjectInputSerializer, responses=s.ProjectSerializer)
    def patch(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "admin")
        data = validated(s.ProjectInputSerializer, request.data, partial=True)
        data.pop("slug", None)
        with versioned_write(request, project, data.pop("version", None)) as expected:
            project = services.project_update(actor=request.user, project=project, data=data, expected_version=expected)
        return with_etag(Response(project_payload(project, project_role(request.user, project))), project)

    @extend_schema(responses={204: None})
    def delete(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "owner")
        with versioned_write(request, project) as expected:
            services.project_delete(actor=request.user, project=project, expected_version=expected)
        return Response(status=http.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- stories

LIST_PARAMS = [
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        description=f"1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    ),
    OpenApiParameter("cursor", str, description="the `next` cursor of the previous page"),
]


def _ordering(request) -> tuple[str, bool]:
    raw = request.query_params.get("ordering", "id")
    descending = raw.startswith("-")
    name = raw.removeprefix("-")
    if name not in ORDERINGS:
        raise ValidationError({"ordering": [f"Order by one of: {', '.join(ORDERINGS)} (prefix '-' to reverse)."]})
    return ORDERINGS[name], descending


def has_filters(request) -> bool:
    return any(name in request.query_params for name in StoryFilter.base_filters)


def filtered_stories(request, queryset):
    """Apply the StoryFilter query parameters; bad values are a 400."""
    if not has_filters(request):
        return queryset  # the common unfiltered page skips building a FilterSet
    if request.query_params.get("updated_since") == "":
        # django-filter ignores an empty value; a date-time parameter that is present must be one.
        raise ValidationError({"updated_since": ["Give an ISO 8601 date-time, e.g. 2025-08-28T12:00:00Z."]})
    filterset = StoryFilter(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ValidationError({k: list(v) for k, v in filterset.errors.items()})
    return filterset.qs


def story_page(request, queryset, *, project_id: int | None = None) -> Response:
    """One keyset page of stories: the page in one query, dependencies in another.
    `project_id`: `queryset` is that project's stories, so an unfiltered page in id order
    (the common request) takes the precompiled query (payloads.project_page_rows)."""
    size = parse_page_size(request)
    field, descending = _ordering(request)
    cursor = request.query_params.get("cursor")
    if project_id is not None and field == "id" and not has_filters(request):
        after = _cursor_position(cursor, field) if cursor else None
        after_id = after[1] if after else None
        rows = project_page_rows(project_id, descending=descending, after_id=after_id, limit=size + 1)
    else:
        rows = _page_rows(request, queryset, size, field, descending, cursor)
    more = len(rows) > size
    rows = rows[:size]
    return Response(
        {
            "next": encode_cursor(rows[-1][field], rows[-1]["id"]) if more else None,
            "results": story_list_payload(rows, reader=request.user),
        }
    )


def _cursor_position(cursor: str, field: str) -> tuple:
    """(ordering value, id) of a `next` cursor; 400 when it is not one for this ordering."""
    value, last_id = decode_cursor(cursor)
    try:
        return cursor_value(field, value), last_id
    except (ValueError, OverflowError):
        raise ValidationError({"cursor": ["This cursor does not fit the ordering; start again without it."]}) from None


def _page_rows(request, queryset, size: int, field: str, descending: bool, cursor: str | None) -> list[dict]:
    queryset = filtered_stories(request, queryset)
    if cursor:
        value, last_id = _cursor_position(cursor, field)
        if field == "id":
            queryset = queryset.filter(**{("id__lt" if descending else "id__gt"): last_id})
        else:
            queryset = queryset.filter(keyset_filter(field, descending, value, last_id))
    order = [f"-{field}" if descending else field]
    if field != "id":
        order.append("id")
    return list(story_values(queryset.order_by(*order))[: size + 1])


def search_filter(queryset, q: str):
    """Full-text search on title + body (PostgreSQL, GIN index of migration 0002),
    icontains on SQLite."""
    if connection.vendor == "postgresql":
        return queryset.extra(  # noqa: S610 - parameterised; the expression matches the index
            where=[f"{SEARCH_EXPRESSION_SQL} @@ websearch_to_tsquery('english', %s)"], params=[q]
        )
    return queryset.filter(Q(title__icontains=q) | Q(body__icontains=q))


SEARCH_EXPRESSION_SQL = "to_tsvector('english', coalesce(stories.title, '') || ' ' || coalesce(stories.body, ''))"


FILTER_PARAMS = [
    OpenApiParameter("ordering", str, enum=[*ORDERINGS, *(f"-{o}" for o in ORDERINGS)]),
    OpenApiParameter("backlog", str),
    OpenApiParameter("status", str, description="status slug(s), comma-separated"),
    OpenApiParameter("status_category", str, many=True),
    OpenApiParameter("epic", str),
    OpenApiParameter("label", str),
    OpenApiParameter("owner", str),
    OpenApiParameter("priority", str, many=True),
    OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
]


class StoryPageSerializer(s.serializers.Serializer):
    next = s.serializers.CharField(allow_null=True)
    results = s.StorySerializer(many=True)


class StorySearchView(APIView):
    """Stories across every project the caller can see; `?q=` searches title and body."""

    @extend_schema(
        parameters=[*LIST_PARAMS, *FILTER_PARAMS, OpenApiParameter("q", str), OpenApiParameter("project", str)],
        responses=StoryPageSerializer,
    )
    def get(self, request):
        projects = selectors.project_list_for_user(user=request.user)
        queryset = Story.objects.filter(project__in=projects)
        q = request.query_params.get("q", "").strip()
        if q:
            queryset = search_filter(queryset, q)
        return story_page(request, queryset)


class ProjectStoryListView(APIView):
    versioned_create = True

    @extend_schema(parameters=[*LIST_PARAMS, *FILTER_PARAMS], responses=StoryPageSerializer)
    def get(self, request, slug):
        project = get_project_for(request, slug)
        return story_page(request, Story.objects.filter(project=project), project_id=project.pk)

    @extend_schema(request=s.StoryInputSerializer, responses={201: s.StorySerializer})
    def post(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "member")
        data = validated(s.StoryInputSerializer, request.data)
        data.pop("version", None)
        for name in ("override_blocked", "reason"):  # a new story has no links yet: never blocked
            data.pop(name, None)
        data = resolve_refs(project, data)
        story = services.story_create(actor=request.user, project=project, **data)
        response = Response(story_payload(story, reader=request.user), status=http.HTTP_201_CREATED)
        response["ETag"] = etag_for(story.version, story.pk)
        return response


class StoryDetailView(APIView):
    versioned = True

    def _story(self, request, slug, key):
        return get_story(get_project_for(request, slug), key)

    def _respond(self, story: Story, status: int = 200) -> Response:
        response = Response(story_payload(story, reader=self.request.user), status=status)
        response["ETag"] = etag_for(story.version, story.pk)
        return response

    @extend_schema(responses=s.StorySerializer)
    def get(self, request, slug, key):
        # One read for the payload (no model instance first): the API's busiest request.
        rows = story_rows_by_key(get_project_for(request, slug).pk, key)
        if not rows:
            raise Http404
        response = Response(story_list_payload(rows, reader=request.user)[0])
        response["ETag"] = etag_for(rows[0]["version"], rows[0]["id"])
        return response

    def _update(self, request, slug, key, partial: bool):
        story = self._story(request, slug, key)
        require_role(request, story.project, "member")
        expected = check_if_match(request, story.pk, story.version)
        data = validated(s.StoryInputSerializer, request.data, partial=partial)
        version = data.pop("version", None)
        notes = data.pop("notes", "")
        override = {"override_blocked": data.pop("override_blocked", False), "override_reason": data.pop("reason", "")}
        data = resolve_refs(story.project, data)
        if "key" in data and data["key"] == story.key:
            data.pop("key")
        with stale_if_match_is_412(version, expected, story.pk):
            story = services.story_update(
                actor=request.user,
                story=story,
                data=data,
                expected_version=version if version is not None else expected,
                notes=notes,
                **override,
            )
        return self._respond(story)

    @extend_schema(request=s.StoryInputSerializer, responses=s.StorySerializer)
    def put(self, request, slug, key):
        return self._update(request, slug, key, partial=False)

    @extend_schema(request=s.StoryInputSerializer, responses=s.StorySerializer)
    def patch(self, request, slug, key):
        return self._update(request, slug, key, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, key):
        story = self._story(request, slug, key)
        require_role(request, story.project, "member")
        expected = check_if_match(request, story.pk, story.version)
        with stale_if_match_is_412(None, expected, story.pk):
            services.story_delete(actor=request.user, story=story, expected_version=expected)
        return Response(status=http.HTTP_204_NO_CONTENT)


class StoryTransitionView(StoryDetailView):
    http_method_names = ["post", "options"]

    @extend_schema(request=s.TransitionInputSerializer, responses=s.StorySerializer)
    def post(self, request, slug, key):
        story = self._story(request, slug, key)
        require_role(request, story.project, "member")
        expected = check_if_match(request, story.pk, story.version)
        data = validated(s.TransitionInputSerializer, request.data)
        version = data.get("version")
        with stale_if_match_is_412(version, expected, story.pk), transaction.atomic():
            story = services.story_transition(
                actor=request.user,
                story=story,
                status=data["status"],
                notes=data.get("notes", ""),
                expected_version=version if version is not None else expected,
                override_blocked=data["override_blocked"],
                override_reason=data["reason"],
            )
        return self._respond(story)
