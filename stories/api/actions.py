"""Story actions (move, dependencies, history), graph queries (stories.graph) and bulk
upsert (stories.bulk). Writes call services; graph algorithms live in stories.graph."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from stories import graph, selectors, services
from stories.bulk import story_bulk_upsert
from stories.models import Backlog, StatusCategory, Story, StoryDependency
from storyhub.errors import ConflictError, NotFoundError

from . import serializers as s
from .payloads import story_list_payload, story_rows_by_id
from .permissions import get_project_for, require_role
from .views import StoryDetailView, check_if_match, get_story, stale_if_match_is_412, validated


def parse_bool(request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValidationError({name: ["Give true or false."]})


def parse_int(request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationError({name: [f"Give a whole number from {low} to {high}."]})
    return value


def parse_max_depth(request) -> int | None:
    raw = request.query_params.get("max_depth")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({"max_depth": ["Give a whole number from 1 to 1000."]}) from None
    if not 1 <= value <= 1000:
        raise ValidationError({"max_depth": ["Give a whole number from 1 to 1000."]})
    return value


def visible_story_by_ref(request, ref: str, default_project) -> Story:
    """Resolve "KEY" / "other-project:KEY"; stories of projects the caller cannot see
    answer exactly like absent ones."""
    story = selectors.story_get_visible_by_ref(ref=ref, default_project=default_project, reader=request.user)
    if story is None:
        raise NotFoundError(f"No story '{ref}'.", details={"depends_on": [f"No story '{ref}'."]})
    return story


# --------------------------------------------------------------------------- actions


class MoveInputSerializer(s.StrictSerializer):
    backlog = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(required=False, min_value=1)


class StoryMoveView(StoryDetailView):
    http_method_names = ["post", "options"]

    @extend_schema(request=MoveInputSerializer, responses=s.StorySerializer)
    def post(self, request, slug, key):
        story = self._story(request, slug, key)
        require_role(request, story.project, "member")
        expected = check_if_match(request, story.pk, story.version)
        data = validated(MoveInputSerializer, request.data)
        backlog = None
        if data["backlog"] is not None:
            backlog = Backlog.objects.filter(project=story.project, slug=data["backlog"]).first()
            if backlog is None:
                message = f"No backlog '{data['backlog']}' in this project."
                raise NotFoundError(message, details={"backlog": [message]})
        version = data.get("version")
        with stale_if_match_is_412(version, expected, story.pk):
            story = services.story_move(
                actor=request.user,
                story=story,
                backlog=backlog,
                expected_version=version if version is not None else expected,
            )
        return self._respond(story)


class RankInputSerializer(s.StrictSerializer):
    before = serializers.CharField(required=False, help_text="key of the story to put this one just before")
    after = serializers.CharField(required=False, help_text="key of the story to put this one just after")
    version = serializers.IntegerField(required=False, min_value=1)


class StoryRankView(StoryDetailView):
    """Reorder a story within its project (the board's and backlogs' order): just before
    `before` and/or just after `after` (keys in the same project; both: they must still be
    neighbours, else 409)."""

    http_method_names = ["post", "options"]

    @extend_schema(request=RankInputSerializer, responses=s.StorySerializer)
    def post(self, request, slug, key):
        story = self._story(request, slug, key)
        require_role(request, story.project, "member")
        expected = check_if_match(request, story.pk, story.version)
        data = validated(RankInputSerializer, request.data)
        anchors = {}
        for name in ("before", "after"):
            if name in data:
                other = Story.objects.filter(project=story.project, key=data[name]).first()
                if other is None:
                    message = f"No story '{data[name]}' in this project."
                    raise NotFoundError(message, details={name: [message]})
                anchors[name] = other
        version = data.get("version")
        with stale_if_match_is_412(version, expected, story.pk):
            story = services.story_rank(
                actor=request.user,
                story=story,
                expected_version=version if version is not None else expected,
                **anchors,
            )
        return self._respond(story)


class DependencySerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null for a link to a story you cannot see")
    depends_on = serializers.CharField(allow_null=True, help_text="null for a story you cannot see (hidden: true)")
    type = serializers.ChoiceField(choices=StoryDependency.Type.choices)
    description = serializers.CharField()
    hidden = serializers.BooleanField(help_text="the linked story is in a project you cannot see")


def dependency_payload(dep: StoryDependency, relative_to, visibility: selectors.Visibility) -> dict:
    """A link of `relative_to`'s story; one to a story the reader cannot see is a
    placeholder (no key, no description, which was written about that story, and no id:
    the reader cannot remove it)."""
    target = dep.depends_on
    if not visibility.sees(target.project_id):
        return {"id": None, "depends_on": None, "type": dep.type, "description": "", "hidden": True}
    ref = selectors.story_ref(
        key=target.key, project_id=target.project_id, slug=target.project.slug, relative_to=relative_to
    )
    return {"id": dep.pk, "depends_on": ref, "type": dep.type, "description": dep.description, "hidden": False}


class StoryDependencyListView(APIView):
    @extend_schema(responses=DependencySerializer(many=True))
    def get(self, request, slug, key):
        story = get_story(get_project_for(request, slug), key)
        deps = StoryDependency.objects.filter(story=story).select_related("depends_on__project").order_by("id")
        visibility = selectors.reader_visibility(request.user)
        return Response([dependency_payload(d, story.project, visibility) for d in deps])

    @extend_schema(request=s.DependencyInputSerializer, responses={201: DependencySerializer})
    def post(self, request, slug, key):
        story = get_story(get_project_for(request, slug), key)
        require_role(request, story.project, "member")
        data = validated(s.DependencyInputSerializer, request.data)
        target = visible_story_by_ref(request, data["depends_on"], story.project)
        try:
            dep = services.dependency_add(
                actor=request.user, story=story, depends_on=target, type=data["type"], description=data["description"]
            )
        except DjangoValidationError as exc:
            # Self-links and duplicates: the request is well-formed but conflicts with the graph.
            raise ConflictError("This dependency cannot be added.", details=exc.message_dict) from None
        visible = selectors.EVERYTHING  # the caller just named the target, so it sees it
        return Response(dependency_payload(dep, story.project, visible), status=http.HTTP_201_CREATED)


class StoryDependencyDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, slug, key, dep_id):
        story = get_story(get_project_for(request, slug), key)
        require_role(request, story.project, "member")
        dep = (
            StoryDependency.objects.filter(story=story, pk=dep_id)
            .select_related("story__project", "depends_on")
            .first()
        )
        if dep is None or not request.user.has_perm("stories.delete_storydependency", dep):
            # A link to a story the caller cannot see is never removed by it (stories.rules).
            raise Http404
        services.dependency_remove(actor=request.user, dependency=dep)
        return Response(status=http.HTTP_204_NO_CONTENT)


class StoryHistoryView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "StatusHistoryEntry",
            {
                "old_status": serializers.CharField(allow_null=True),
                "new_status": serializers.CharField(),
                "changed_by": serializers.CharField(allow_null=True),
                "changed_at": serializers.DateTimeField(),
                "notes": serializers.CharField(),
            },
            many=True,
        )
    )
    def get(self, request, slug, key):
        story = get_story(get_project_for(request, slug), key)
        rows = story.status_history.order_by("changed_at", "id").values(
            "old_status__slug", "new_status__slug", "changed_by__username", "changed_at", "notes"
        )
        return Response(
            [
                {
                    "old_status": r["old_status__slug"],
                    "new_status": r["new_status__slug"],
                    "changed_by": r["changed_by__username"],
                    "changed_at": r["changed_at"],
                    "notes": r["notes"],
                }
                for r in rows
            ]
        )


# --------------------------------------------------------------------------- graph


def _walk_payload(ids_depths: list[tuple[int | None, int]], reader) -> list[dict]:
    """Story payloads with their depth; a hidden story (id None) is the placeholder
    {"hidden": true, "depth": N}."""
    ids = [i for i, _ in ids_depths if i is not None]
    rows = story_rows_by_id(ids)
    present = [i for i in ids if i in rows]
    by_id = dict(zip(present, story_list_payload([rows[i] for i in present], reader=reader), strict=True))
    out = []
    for story_id, depth in ids_depths:
        if story_id is None:
            out.append({"hidden": True, "depth": depth})
            continue
        item = by_id.get(story_id)
        if item is not None:
            out.append({**item, "depth": depth})
    return out


GRAPH_WALK_PARAMS = [
    OpenApiParameter("transitive", OpenApiTypes.BOOL, description="follow the whole chain (default false)"),
    OpenApiParameter("max_depth", int, description="with transitive: stop after this many hops (1..1000)"),
]


class GraphStorySerializer(s.StorySerializer):
    depth = serializers.IntegerField()


class HiddenGraphStorySerializer(serializers.Serializer):
    """A story of a project the caller cannot see: only that it is there, and how far."""

    hidden = serializers.BooleanField()
    depth = serializers.IntegerField()


GRAPH_WALK_ITEM = PolymorphicProxySerializer(
    component_name="GraphWalkItem",
    serializers=[GraphStorySerializer, HiddenGraphStorySerializer],
    resource_type_field_name=None,
    many=True,
)


class StoryBlockersView(APIView):
    walk = "story_blockers"

    @extend_schema(parameters=GRAPH_WALK_PARAMS, responses=GRAPH_WALK_ITEM)
    def get(self, request, slug, key):
        project = get_project_for(request, slug)
        story = get_story(project, key)
        transitive = parse_bool(request, "transitive")
        max_depth = parse_max_depth(request)
        found = getattr(graph, self.walk)(story=story, transitive=transitive, max_depth=max_depth)
        # Stories the caller cannot see are placeholders, and the walk does not pass them.
        seen = selectors.visible_walk(
            start_id=story.pk, found=found, reader=request.user, forward=self.walk == "story_blockers"
        )
        return Response(_walk_payload(seen, request.user))


class StoryDependentsView(StoryBlockersView):
    walk = "story_dependents"


class ProjectReadyView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="page size, 1..1000 (default 100)"),
            OpenApiParameter("offset", int, description="stories to skip (default 0)"),
        ],
        responses=s.StorySerializer(many=True),
    )
    def get(self, request, slug):
        project = get_project_for(request, slug)
        limit = parse_int(request, "limit", default=100, low=1, high=1000)
        offset = parse_int(request, "offset", default=0, low=0, high=10_000_000)
        ids = graph.ready_story_ids(project=project, limit=limit, offset=offset)
        rows = story_rows_by_id(ids)
        return Response(story_list_payload([rows[i] for i in ids if i in rows], reader=request.user))


class GraphNodeSerializer(serializers.Serializer):
    """A story of the graph; other projects' stories have `external: true` and a
    "slug:KEY" id, stories the reader may not see only `{"id": "hidden-N", "hidden": true}`."""

    id = serializers.CharField()
    title = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    status_category = serializers.ChoiceField(choices=StatusCategory.choices, required=False)
    priority = serializers.ChoiceField(choices=s.PRIORITY_WORDS, required=False)
    points = serializers.FloatField(required=False)
    blocked = serializers.BooleanField(required=False)
    ready = serializers.BooleanField(required=False)
    external = serializers.BooleanField(required=False)
    hidden = serializers.BooleanField(required=False)


GraphEdgeSerializer = inline_serializer(
    "GraphEdge",
    {
        "from": serializers.CharField(help_text="the story that depends (node id)"),
        "to": serializers.CharField(help_text="what it depends on (node id)"),
        "type": serializers.ChoiceField(choices=StoryDependency.Type.choices),
    },
)

GRAPH_RENDERINGS = {
    "dot": ("text/vnd.graphviz; charset=utf-8", graph.graph_to_dot),
    "mermaid": ("text/plain; charset=utf-8", graph.graph_to_mermaid),
}


class ProjectGraphView(APIView):
    """`graph/` answers JSON; `graph/dot/` and `graph/mermaid/` the renderings (each its
    own operation with its own media type, so generated clients read them as text).
    `?format=dot|mermaid` on `graph/` still works for existing callers; the schema leaves
    it out because one operation with three bodies cannot be typed."""

    rendering: str | None = None

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # errors are JSON

    @extend_schema(
        responses=inline_serializer(
            "ProjectGraph",
            {
                "project": serializers.CharField(),
                "nodes": GraphNodeSerializer(many=True),
                "edges": serializers.ListField(child=GraphEdgeSerializer),
            },
        )
    )
    def get(self, request, slug):
        project = get_project_for(request, slug)
        fmt = self.rendering or request.query_params.get("format", "json")
        if fmt != "json" and fmt not in GRAPH_RENDERINGS:
            raise ValidationError({"format": ["Give json, dot or mermaid."]})
        data = graph.project_graph(project=project, reader=request.user)
        if fmt in GRAPH_RENDERINGS:
            content_type, render = GRAPH_RENDERINGS[fmt]
            return HttpResponse(render(data), content_type=content_type)
        return Response(data)


class ProjectGraphDotView(ProjectGraphView):
    rendering = "dot"

    @extend_schema(responses={(200, "text/vnd.graphviz"): OpenApiTypes.STR})
    def get(self, request, slug):
        return super().get(request, slug)


class ProjectGraphMermaidView(ProjectGraphView):
    rendering = "mermaid"

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request, slug):
        return super().get(request, slug)


def _keys_for(ids: list[int]) -> list[str]:
    keys = dict(Story.objects.filter(pk__in=ids).values_list("pk", "key"))
    return [keys[i] for i in ids if i in keys]


class ProjectTopologicalView(APIView):
    @extend_schema(
        responses=inline_serializer("TopologicalOrder", {"keys": serializers.ListField(child=serializers.CharField())})
    )
    def get(self, request, slug):
        project = get_project_for(request, slug)
        return Response({"keys": _keys_for(graph.topological_order(project=project))})


class ProjectCriticalPathView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "CriticalPath",
            {"keys": serializers.ListField(child=serializers.CharField()), "points": serializers.FloatField()},
        )
    )
    def get(self, request, slug):
        project = get_project_for(request, slug)
        result = graph.critical_path(project=project)
        return Response({"keys": _keys_for(list(result["story_ids"])), "points": result["points"]})


# --------------------------------------------------------------------------- bulk


class BulkInputSerializer(s.StrictSerializer):
    items = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=1000)


class StoryBulkView(APIView):
    @extend_schema(
        request=BulkInputSerializer,
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL)],
        responses=inline_serializer(
            "BulkResult",
            {
                "dry_run": serializers.BooleanField(),
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "unchanged": serializers.IntegerField(),
                "items": serializers.ListField(
                    child=serializers.DictField(), help_text="[{index, key, outcome: created|updated|unchanged}]"
                ),
            },
        ),
    )
    def post(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "member")
        dry_run = parse_bool(request, "dry_run")
        # Either {"items": [...]} or the bare list.
        payload = {"items": request.data} if isinstance(request.data, list) else request.data
        data = validated(BulkInputSerializer, payload)
        result = story_bulk_upsert(actor=request.user, project=project, items=data["items"], dry_run=dry_run)
        body = result.as_dict() if hasattr(result, "as_dict") else result
        if isinstance(body, dict):
            body = {"dry_run": dry_run, **body}
        return Response(body)
