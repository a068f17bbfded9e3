"""Story files over HTTP: `POST projects/{slug}/import/` (multipart story files or zips)
and `GET projects/{slug}/export/?format=markdown|json|csv` (streamed). Thin: the work is
in stories.importer and stories.exporter; writes go through the bulk upsert service."""

from __future__ import annotations

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from stories.exporter import CONTENT_TYPES, FORMATS, check_export_filters, export_filename, stream_export
from stories.importer import ImportLimits, import_sources, sources_from_uploads
from stories.models import Backlog, ImportOutcome
from storyhub.errors import ApplicationError, NotFoundError

from .actions import parse_bool
from .permissions import get_project_for, require_role

# Upload bound for one import request (the importer's own limits apply on top).
MAX_UPLOAD_BYTES = getattr(settings, "STORYHUB_IMPORT_MAX_UPLOAD_BYTES", 50_000_000)


class ImportFailed(ApplicationError):
    code = "import_failed"
    http_status = 400


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    http_status = 413


OUTCOMES = list(ImportOutcome.values)


class ImportFileResultSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="the file's path in its root (a zip's entries: in the zip)")
    root = serializers.CharField(help_text="the upload (zip) the file came from; empty for a file uploaded alone")
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    key = serializers.CharField(allow_null=True)
    code = serializers.CharField(required=False, help_text="a stable reason code, e.g. duplicate_key, yaml, atomic")
    line = serializers.IntegerField(required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_null=True, help_text="one line")
    caused_by = serializers.CharField(required=False, help_text="the file whose failure made this one fail")
    conflict = serializers.IntegerField(required=False, help_text="the parked ImportConflict's id (outcome conflict)")
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class ImportReportSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True, help_text="the ImportRun that records this import")
    run_url = serializers.URLField(allow_null=True, help_text="its report: GET projects/{slug}/imports/{run_id}/")
    dry_run = serializers.BooleanField()
    atomic = serializers.BooleanField()
    written = serializers.BooleanField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    conflict = serializers.IntegerField()
    failed = serializers.IntegerField()
    excluded = serializers.IntegerField()
    skipped = serializers.IntegerField()
    files = ImportFileResultSerializer(many=True)


class ImportFailedSerializer(serializers.Serializer):
    """The usual error shape; code `import_failed` adds the whole report."""

    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    report = ImportReportSerializer(required=False)


class ProjectImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "Story files (*.md, *.txt) and/or zips of them.",
                    }
                },
                "required": ["files"],
            }
        },
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="the real run, rolled back: reports exactly what it would do and writes nothing",
            ),
            OpenApiParameter(
                "atomic",
                OpenApiTypes.BOOL,
                description="all or nothing: one bad file writes "
                "nothing (400 import_failed with the report). Default: a bad file fails alone and "
                "the others are written, as the import_stories command does",
            ),
            OpenApiParameter("backlog", str, description="put the stories into this backlog (slug)"),
        ],
        responses={
            200: ImportReportSerializer,
            400: OpenApiResponse(
                description="A bad request, or (code import_failed, atomic imports) a bad file: nothing was "
                "written and `report` lists every file.",
                response=ImportFailedSerializer,
            ),
        },
    )
    def post(self, request, slug):
        """Import story files (and zips, JSON exports), recorded as an import run.

        Not atomic by default: every file ends created, updated, unchanged, conflict
        (parked), failed, excluded or skipped in the report, and the good ones are
        written even when others fail."""
        project = get_project_for(request, slug)
        require_role(request, project, "member")
        dry_run = parse_bool(request, "dry_run")
        atomic = _atomic(request)
        backlog = None
        if request.query_params.get("backlog"):
            backlog = Backlog.objects.filter(project=project, slug=request.query_params["backlog"]).first()
            if backlog is None:
                message = f"No backlog '{request.query_params['backlog']}' in project '{project.slug}'."
                raise NotFoundError(message, details={"backlog": [message]})
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_UPLOAD_BYTES:
            raise RequestTooLarge(f"Uploads are limited to {MAX_UPLOAD_BYTES} bytes per request.")
        uploads = [(f.name, f) for name in request.FILES for f in request.FILES.getlist(name)]
        if not uploads:
            raise ValidationError({"files": ["Upload story files (*.md, *.txt) or a zip as multipart 'files'."]})
        sources = sources_from_uploads(uploads, ImportLimits())
        report = import_sources(
            sources,
            project=project,
            actor=request.user,
            backlog=backlog,
            dry_run=dry_run,
            continue_on_error=not atomic,
            source="api",
        )
        body = report_body(request, project, report)
        if atomic and not report.ok:
            failed = [f for f in report.files if f.outcome == "failed"]
            raise ImportFailed(
                f"{len(failed)} of {len(report.files)} files cannot be imported; nothing was written.",
                details={f.path: [f"line {f.line}: {f.reason}" if f.line else f.reason] for f in failed},
                extra={"report": body},
            )
        return Response(body)


def _atomic(request) -> bool:
    """`?atomic=true`; `?continue_on_error=false` (the older spelling, left out of the
    schema) means the same. `atomic`, when given, decides."""
    if request.query_params.get("atomic") is not None:
        return parse_bool(request, "atomic")
    return not parse_bool(request, "continue_on_error", default=True)


def report_body(request, project, report) -> dict:
    """An import's report as the API answers it: the importer's report plus whether it
    was atomic and the link to its import run."""
    body = report.as_dict()
    body["atomic"] = report.atomic
    body["run_url"] = (
        request.build_absolute_uri(reverse("import-run-detail", kwargs={"slug": project.slug, "run_id": report.run_id}))
        if report.run_id is not None
        else None
    )
    return body


EXPORT_FILTERS = [
    OpenApiParameter("epic", str, description="only this epic (slug)"),
    OpenApiParameter("status", str, description="only these statuses (slugs, comma-separated)"),
]


class ProjectExportView(APIView):
    """`export/` is the markdown zip; `export/markdown/`, `export/json/` and `export/csv/`
    one format each, every one its own operation with its own media type. `?format=` on
    `export/` still works for existing callers; the schema leaves it out because one
    operation with three bodies cannot be typed."""

    export_format: str | None = None

    def perform_content_negotiation(self, request, force=False):
        # The body is a zip, JSON or CSV whatever the Accept header says; errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=EXPORT_FILTERS, responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, slug):
        project = get_project_for(request, slug)
        fmt = self.export_format or request.query_params.get("format", "markdown")
        if fmt not in FORMATS:
            raise ValidationError({"format": [f"Give one of: {', '.join(FORMATS)}."]})
        epic, status = request.query_params.get("epic"), request.query_params.get("status")
        check_export_filters(project, epic=epic, status=status)
        response = StreamingHttpResponse(
            stream_export(project, fmt, epic=epic, status=status, reader=request.user),
            content_type=CONTENT_TYPES[fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="{export_filename(project, fmt)}"'
        return response


class ProjectExportMarkdownView(ProjectExportView):
    export_format = "markdown"

    @extend_schema(parameters=EXPORT_FILTERS, responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, slug):
        return super().get(request, slug)


class ProjectExportJsonView(ProjectExportView):
    export_format = "json"

    @extend_schema(parameters=EXPORT_FILTERS, responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request, slug):
        return super().get(request, slug)


class ProjectExportCsvView(ProjectExportView):
    export_format = "csv"

    @extend_schema(parameters=EXPORT_FILTERS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, slug):
        return super().get(request, slug)


EXPORT_VIEWS = {"markdown": ProjectExportMarkdownView, "json": ProjectExportJsonView, "csv": ProjectExportCsvView}
