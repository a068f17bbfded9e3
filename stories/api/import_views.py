"""The persistent import report over HTTP: a project's import runs (`imports/`), each
run's files (`imports/{run_id}/files/`, filterable by outcome) and the parked conflicts
(`import-conflicts/`), with their resolution (`import-conflicts/{id}/resolve/`).

Thin: reads go through stories.selectors after the one access check of every project
endpoint (`get_project_for`: a project the caller cannot see is a 404 exactly like a
missing one, and so is anything of it); a resolution calls the importer's resolution
services (stories.importer), which check the member role again and audit it."""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from stories import selectors
from stories.exporter import story_markdown
from stories.importer import import_conflict_keep_existing, import_conflict_parked_wins, import_conflict_rekey
from stories.models import ConflictKind, ConflictState, ImportConflict, ImportFile, ImportOutcome, ImportRun, Project

from .actions import parse_bool
from .permissions import get_project_for, require_role
from .serializers import StrictSerializer
from .views import LIST_PARAMS, decode_cursor, encode_cursor, parse_page_size, validated

RESOLVED = "resolved"  # ?state=resolved: every state but open


# --------------------------------------------------------------------------- shapes


class ImportRunOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    source = serializers.CharField(help_text="cli, api, admin, mcp or sync")
    actor = serializers.CharField(help_text="who ran it (username; 'system' for commands run as the system)")
    repository = serializers.CharField(help_text="the repository the files came from (Story.source_repo)")
    roots = serializers.ListField(child=serializers.DictField(), help_text="the roots given, in order")
    options = serializers.DictField()
    dry_run = serializers.BooleanField()
    state = serializers.ChoiceField(choices=ImportRun.State.choices)
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="outcome → number of files")
    error = serializers.CharField(help_text="why a failed run stopped as a whole")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    files_url = serializers.URLField()
    conflicts_url = serializers.URLField()


class ImportRunPageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = ImportRunOut(many=True)


class ImportFileOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    run = serializers.IntegerField()
    root = serializers.CharField()
    path = serializers.CharField(help_text="relative to its root")
    outcome = serializers.ChoiceField(choices=ImportOutcome.choices)
    code = serializers.CharField(help_text="stable reason code (empty: none)")
    reason = serializers.CharField(help_text="the one-line message")
    line = serializers.IntegerField(allow_null=True)
    key = serializers.CharField()
    story = serializers.CharField(allow_null=True, help_text="the key of the story it became (or that holds its key)")
    caused_by = serializers.IntegerField(allow_null=True, help_text="the file whose failure made this one fail")
    caused_by_path = serializers.CharField(allow_null=True)
    conflict = serializers.IntegerField(allow_null=True, help_text="the parked conflict (outcome conflict)")
    content_hash = serializers.CharField()
    warnings = serializers.ListField(child=serializers.CharField())


class ImportFilePageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = ImportFileOut(many=True)


class ImportConflictOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    kind = serializers.ChoiceField(choices=ConflictKind.choices)
    state = serializers.ChoiceField(choices=ConflictState.choices)
    key = serializers.CharField()
    other_key = serializers.CharField(help_text="heading_mismatch: the key the heading names")
    source_repo = serializers.CharField()
    source_path = serializers.CharField(help_text="the parked file, relative to its repository")
    content_hash = serializers.CharField()
    story = serializers.CharField(allow_null=True, help_text="the key of the story holding the key")
    story_source_path = serializers.CharField(help_text="the file that story came from")
    message = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)
    file = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    resolved_by = serializers.CharField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_story = serializers.CharField(allow_null=True)


class ExistingVersionOut(serializers.Serializer):
    key = serializers.CharField()
    path = serializers.CharField()
    text = serializers.CharField(help_text="the story's file as the markdown export writes it now")


class ImportConflictDetailOut(ImportConflictOut):
    content = serializers.CharField(help_text="the parked file's full text, as read")
    existing = ExistingVersionOut(allow_null=True, help_text="the story holding the key, as its file")
    replaced_content = serializers.CharField(help_text="what lost when the parked file won")


class ImportConflictPageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = ImportConflictOut(many=True)


RESOLUTIONS = ["keep_existing", "parked_wins", "rekey"]


class ResolveInput(StrictSerializer):
    resolution = serializers.ChoiceField(
        choices=RESOLUTIONS,
        help_text="keep_existing: the story stays, the file stays recorded; parked_wins: the parked file "
        "becomes the story; rekey: import the parked file as a new story under new_key",
    )
    new_key = serializers.CharField(max_length=64, required=False, help_text="rekey only")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["resolution"] == "rekey" and not attrs.get("new_key", "").strip():
            raise serializers.ValidationError({"new_key": ["Give the new key (resolution rekey)."]})
        if attrs["resolution"] != "rekey" and "new_key" in attrs:
            raise serializers.ValidationError({"new_key": ["Only a rekey takes a new key."]})
        return attrs


# --------------------------------------------------------------------------- payloads


def _url(request, name: str, **kwargs) -> str:
    return request.build_absolute_uri(reverse(name, kwargs=kwargs))


def run_payload(request, project: Project, run: ImportRun) -> dict:
    slug = project.slug
    return {
        "id": run.pk,
        "url": _url(request, "import-run-detail", slug=slug, run_id=run.pk),
        "source": run.source,
        "actor": run.actor_repr,
        "repository": run.repository,
        "roots": run.roots,
        "options": run.options,
        "dry_run": run.dry_run,
        "state": run.state,
        "counts": {outcome: (run.counts or {}).get(outcome, 0) for outcome in ImportOutcome.values},
        "error": run.error,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "files_url": _url(request, "import-file-list", slug=slug, run_id=run.pk),
        "conflicts_url": _url(request, "import-conflict-list", slug=slug) + f"?run={run.pk}",
    }


def file_payload(request, project: Project, row: ImportFile, conflicts: dict[int, int]) -> dict:
    cause = row.caused_by
    return {
        "id": row.pk,
        "url": _url(request, "import-file-detail", slug=project.slug, run_id=row.run_id, file_id=row.pk),
        "run": row.run_id,
        "root": row.root,
        "path": row.path,
        "outcome": row.outcome,
        "code": row.reason,
        "reason": row.message,
        "line": row.line,
        "key": row.key,
        "story": row.story.key if row.story is not None else None,
        "caused_by": row.caused_by_id,
        "caused_by_path": str(cause) if cause is not None else None,
        "conflict": conflicts.get(row.pk),
        "content_hash": row.content_hash,
        "warnings": row.warnings,
    }


def conflict_payload(request, project: Project, conflict: ImportConflict) -> dict:
    return {
        "id": conflict.pk,
        "url": _url(request, "import-conflict-detail", slug=project.slug, conflict_id=conflict.pk),
        "kind": conflict.kind,
        "state": conflict.state,
        "key": conflict.key,
        "other_key": conflict.other_key,
        "source_repo": conflict.source_repo,
        "source_path": conflict.source_path,
        "content_hash": conflict.content_hash,
        "story": conflict.story.key if conflict.story is not None else None,
        "story_source_path": conflict.story_source_path,
        "message": conflict.message,
        "run": conflict.run_id,
        "file": conflict.file_id,
        "created_at": conflict.created_at,
        "resolved_by": conflict.resolved_by.get_username() if conflict.resolved_by is not None else None,
        "resolved_at": conflict.resolved_at,
        "resolved_story": conflict.resolved_story.key if conflict.resolved_story is not None else None,
    }


def conflict_detail_payload(request, project: Project, conflict: ImportConflict) -> dict:
    existing = None
    if conflict.story is not None:
        path, text = story_markdown(conflict.story, reader=request.user)
        existing = {"key": conflict.story.key, "path": path, "text": text}
    return {
        **conflict_payload(request, project, conflict),
        "content": conflict.content,
        "existing": existing,
        "replaced_content": conflict.replaced_content,
    }


# --------------------------------------------------------------------------- paging


def _page(request, queryset, *, descending: bool) -> tuple[list, str | None]:
    """One keyset page by id (newest first, or in the report's order) and the next cursor."""
    size = parse_page_size(request)
    cursor = request.query_params.get("cursor")
    if cursor:
        _, last_id = decode_cursor(cursor)
        queryset = queryset.filter(**{("id__lt" if descending else "id__gt"): last_id})
    rows = list(queryset.order_by("-id" if descending else "id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(None, rows[-1].pk) if more else None)


def _choice_param(request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise ValidationError({name: [f"Give one of: {', '.join(choices)}."]})
    return value


def _id_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: ["Give an import run's id (a whole number)."]})
    return int(raw)


def _run(request, slug: str, run_id: int) -> tuple[Project, ImportRun]:
    project = get_project_for(request, slug)
    run = selectors.import_runs_of(project=project).filter(pk=run_id).first()
    if run is None:
        raise Http404
    return project, run


def _conflict(request, slug: str, conflict_id: int) -> tuple[Project, ImportConflict]:
    project = get_project_for(request, slug)
    conflict = selectors.import_conflicts_of(project=project).filter(pk=conflict_id).first()
    if conflict is None:
        raise Http404
    return project, conflict


# --------------------------------------------------------------------------- views

RUN_STATES = list(ImportRun.State.values)
OUTCOMES = list(ImportOutcome.values)
CONFLICT_STATES = [*ConflictState.values, RESOLVED]


class ImportRunListView(APIView):
    @extend_schema(
        parameters=[
            *LIST_PARAMS,
            OpenApiParameter("source", str, description="cli, api, admin, mcp or sync"),
            OpenApiParameter("state", str, enum=RUN_STATES),
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="only dry runs (true) or only real ones"),
        ],
        responses=ImportRunPageOut,
    )
    def get(self, request, slug):
        """List a project's import runs, newest first (dry runs too)."""
        project = get_project_for(request, slug)
        runs = selectors.import_runs_of(project=project)
        state = _choice_param(request, "state", RUN_STATES)
        if state:
            runs = runs.filter(state=state)
        if request.query_params.get("source"):
            runs = runs.filter(source=request.query_params["source"])
        if request.query_params.get("dry_run") is not None:
            runs = runs.filter(dry_run=parse_bool(request, "dry_run"))
        rows, more = _page(request, runs, descending=True)
        return Response({"next": more, "results": [run_payload(request, project, run) for run in rows]})


class ImportRunDetailView(APIView):
    @extend_schema(responses=ImportRunOut)
    def get(self, request, slug, run_id):
        """Read an import run: who, when, what was given, the counts per outcome."""
        project, run = _run(request, slug, run_id)
        return Response(run_payload(request, project, run))


class ImportFileListView(APIView):
    @extend_schema(
        parameters=[*LIST_PARAMS, OpenApiParameter("outcome", str, enum=OUTCOMES)],
        responses=ImportFilePageOut,
    )
    def get(self, request, slug, run_id):
        """List an import run's files in the report's order, each with its outcome and reason."""
        project, run = _run(request, slug, run_id)
        files = selectors.import_files_of(run=run)
        outcome = _choice_param(request, "outcome", OUTCOMES)
        if outcome:
            files = files.filter(outcome=outcome)
        rows, more = _page(request, files, descending=False)
        conflicts = selectors.import_conflict_ids_for_files(file_ids=[row.pk for row in rows])
        return Response({"next": more, "results": [file_payload(request, project, r, conflicts) for r in rows]})


class ImportFileDetailView(APIView):
    @extend_schema(responses=ImportFileOut)
    def get(self, request, slug, run_id, file_id):
        """Read one file of an import run."""
        project, run = _run(request, slug, run_id)
        row = selectors.import_files_of(run=run).filter(pk=file_id).first()
        if row is None:
            raise Http404
        conflicts = selectors.import_conflict_ids_for_files(file_ids=[row.pk])
        return Response(file_payload(request, project, row, conflicts))


class ImportConflictListView(APIView):
    @extend_schema(
        parameters=[
            *LIST_PARAMS,
            OpenApiParameter(
                "state", str, enum=CONFLICT_STATES, description="open, resolved (any resolution) or one resolution"
            ),
            OpenApiParameter("kind", str, enum=list(ConflictKind.values)),
            OpenApiParameter("run", int, description="only the conflicts an import run parked"),
        ],
        responses=ImportConflictPageOut,
    )
    def get(self, request, slug):
        """List a project's parked import conflicts, newest first."""
        project = get_project_for(request, slug)
        conflicts = selectors.import_conflicts_of(project=project)
        state = _choice_param(request, "state", CONFLICT_STATES)
        if state == RESOLVED:
            conflicts = conflicts.exclude(state=ConflictState.OPEN)
        elif state:
            conflicts = conflicts.filter(state=state)
        kind = _choice_param(request, "kind", list(ConflictKind.values))
        if kind:
            conflicts = conflicts.filter(kind=kind)
        run = _id_param(request, "run")
        if run is not None:
            conflicts = conflicts.filter(run_id=run)
        rows, more = _page(request, conflicts, descending=True)
        return Response({"next": more, "results": [conflict_payload(request, project, c) for c in rows]})


class ImportConflictDetailView(APIView):
    @extend_schema(responses=ImportConflictDetailOut)
    def get(self, request, slug, conflict_id):
        """Read a parked conflict with both versions' full text."""
        project, conflict = _conflict(request, slug, conflict_id)
        return Response(conflict_detail_payload(request, project, conflict))


class ImportConflictResolveView(APIView):
    @extend_schema(request=ResolveInput, responses=ImportConflictDetailOut)
    def post(self, request, slug, conflict_id):
        """Resolve a parked conflict: keep the existing story, let the parked file win, or
        import it under a new key (members; 409 when it was resolved already)."""
        project, conflict = _conflict(request, slug, conflict_id)
        require_role(request, project, "member")
        data = validated(ResolveInput, request.data)
        resolution = data["resolution"]
        if resolution == "keep_existing":
            import_conflict_keep_existing(actor=request.user, conflict=conflict)
        elif resolution == "parked_wins":
            import_conflict_parked_wins(actor=request.user, conflict=conflict, source="api")
        else:
            import_conflict_rekey(actor=request.user, conflict=conflict, new_key=data["new_key"], source="api")
        _, conflict = _conflict(request, slug, conflict_id)
        return Response(conflict_detail_payload(request, project, conflict))
