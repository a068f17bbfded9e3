"""`GET projects/{slug}/reports/…`: the reports of stories.reports as JSON, and each one
at `…/csv/` as CSV of the report's `rows` (one media type per operation). Thin: a
viewer of the project may read them; the figures come from stories.reports.figures."""

from __future__ import annotations

import csv
import io

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from stories.models import Backlog, BacklogType
from stories.reports import figures
from stories.reports.params import parse_params, parse_period

from .permissions import get_project_for
from .renderers import ORJSONRenderer


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "(hidden)" if value.get("hidden") else str(value)
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value)
    # Spreadsheets run cells that start like a formula; keep them text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class ReportCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = data.get("columns") or []
        writer.writerow(columns)
        for row in data.get("rows") or []:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
        return out.getvalue().encode()


RANGE_PARAMETERS = [
    OpenApiParameter("tz", str, description="IANA time zone the days are cut in (default UTC)"),
    OpenApiParameter("from", OpenApiTypes.DATE, description="first day, inclusive (default: 12 weeks before `to`)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="last day, inclusive (default: today)"),
]
RESPONSES = {(200, "application/json"): OpenApiTypes.OBJECT}
CSV_RESPONSES = {(200, "text/csv"): OpenApiTypes.STR}


class ReportView(APIView):
    """A project's report; subclasses say which."""

    renderer_classes = [ORJSONRenderer, ReportCSVRenderer]
    report = ""
    as_csv = False

    def perform_content_negotiation(self, request, force=False):
        if self.as_csv:
            return ReportCSVRenderer(), ReportCSVRenderer.media_type
        return ORJSONRenderer(), ORJSONRenderer.media_type

    def handle_exception(self, exc):
        # Errors keep the API's JSON shape, also when CSV was asked for.
        self.request.accepted_renderer, self.request.accepted_media_type = ORJSONRenderer(), ORJSONRenderer.media_type
        return super().handle_exception(exc)

    def compute(self, request, project, params, **kwargs) -> dict:
        raise NotImplementedError

    def answer(self, request, slug, **kwargs):
        project = get_project_for(request, slug)
        params = parse_params(request.query_params)
        response = Response(self.compute(request, project, params, **kwargs))
        if self.as_csv:
            response["Content-Disposition"] = f'attachment; filename="{project.slug}-{self.report}.csv"'
        return response


def _simple(name: str, fn, doc: str):
    class View(ReportView):
        report = name

        def compute(self, request, project, params, **kwargs):
            return fn(project, params)

        @extend_schema(parameters=RANGE_PARAMETERS, responses=RESPONSES)
        def get(self, request, slug):
            return self.answer(request, slug)

    View.__doc__ = doc
    View.__name__ = "".join(part.title() for part in name.split("-")) + "ReportView"
    return View


CumulativeFlowView = _simple("cumulative-flow", figures.cumulative_flow, "Stories per status category, per day.")
CycleTimeView = _simple("cycle-time", figures.cycle_time, "Cycle time: first start to completion.")
LeadTimeView = _simple("lead-time", figures.lead_time, "Lead time: creation to completion.")
ThroughputView = _simple("throughput", figures.throughput, "Stories completed per week.")
AgeingWipView = _simple("ageing-wip", figures.ageing_wip, "Stories in progress by age.")
EpicProgressView = _simple("epic-progress", figures.epic_progress, "Points done of total, per epic.")


def csv_view(view: type[ReportView], *, sprint: bool = False) -> type[ReportView]:
    """The CSV operation of a report view (the same figures, its `rows` as CSV)."""
    extra = list(getattr(view, "extra_parameters", []))

    if sprint:

        class SprintCsv(view):  # type: ignore[valid-type,misc]
            as_csv = True

            @extend_schema(parameters=RANGE_PARAMETERS, responses=CSV_RESPONSES)
            def get(self, request, slug, backlog):
                return self.answer(request, slug, backlog=backlog)

        made: type[ReportView] = SprintCsv
    else:

        class Csv(view):  # type: ignore[valid-type,misc]
            as_csv = True

            @extend_schema(parameters=[*RANGE_PARAMETERS, *extra], responses=CSV_RESPONSES)
            def get(self, request, slug):
                return self.answer(request, slug)

        made = Csv
    made.__name__ = view.__name__.replace("View", "CsvView")
    made.__doc__ = f"{view.__doc__} (CSV)"
    return made


PERIOD = OpenApiParameter("period", str, enum=["week", "sprint"], description="default week")


class VelocityView(ReportView):
    """Points completed per week or per sprint."""

    report = "velocity"
    extra_parameters = [PERIOD]

    def compute(self, request, project, params, **kwargs):
        return figures.velocity(project, params, period=parse_period(request.query_params.get("period")))

    @extend_schema(
        parameters=[
            *RANGE_PARAMETERS,
            OpenApiParameter("period", str, enum=["week", "sprint"], description="default week"),
        ],
        responses=RESPONSES,
    )
    def get(self, request, slug):
        return self.answer(request, slug)


class CrossProjectView(ReportView):
    """Which projects block which, and the open cross-project blockers."""

    report = "cross-project"

    def compute(self, request, project, params, **kwargs):
        return figures.cross_project(project, params, reader=request.user)

    @extend_schema(parameters=RANGE_PARAMETERS, responses=RESPONSES)
    def get(self, request, slug):
        return self.answer(request, slug)


class SprintView(ReportView):
    """Burndown / burnup of a sprint backlog (its starts_on … ends_on)."""

    report = "burndown"

    def compute(self, request, project, params, **kwargs):
        backlog = Backlog.objects.filter(project=project, slug=kwargs["backlog"]).first()
        if backlog is None:
            raise Http404
        if backlog.type != BacklogType.SPRINT or backlog.starts_on is None or backlog.ends_on is None:
            raise ValidationError(
                {
                    "backlog": [
                        f"Backlog '{backlog.slug}' is not a sprint with dates: give it type 'sprint', starts_on and ends_on."
                    ]
                }
            )
        return {**figures.sprint(project, backlog, params), "report": self.report}

    @extend_schema(parameters=RANGE_PARAMETERS, responses=RESPONSES)
    def get(self, request, slug, backlog):
        return self.answer(request, slug, backlog=backlog)


class BurndownView(SprintView):
    """Burndown of a sprint: remaining points per day against the ideal line."""

    report = "burndown"


class BurnupView(SprintView):
    """Burnup of a sprint: scope and completed points per day."""

    report = "burnup"


REPORT_VIEWS = {
    "velocity": VelocityView,
    "cumulative-flow": CumulativeFlowView,
    "cycle-time": CycleTimeView,
    "lead-time": LeadTimeView,
    "throughput": ThroughputView,
    "ageing-wip": AgeingWipView,
    "epic-progress": EpicProgressView,
    "cross-project": CrossProjectView,
}
CSV_VIEWS = {name: csv_view(view) for name, view in REPORT_VIEWS.items()}
SPRINT_VIEWS = {"burndown": BurndownView, "burnup": BurnupView}
SPRINT_CSV_VIEWS = {name: csv_view(view, sprint=True) for name, view in SPRINT_VIEWS.items()}
