"""The admin's Reports page of a project: the parameters from the query string (a bad
one is shown on the page, with the defaults used instead) and every chart, drawn
server-side by stories.reports.charts."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from .models import Backlog, BacklogType, Project
from .reports import figures
from .reports.charts import CHART_CSS, charts_for
from .reports.params import parse_params


def reports_page(project: Project, query, *, reader) -> dict:
    errors: list[str] = []
    try:
        params = parse_params(query)
    except ValidationError as exc:
        errors = [f"{name}: {message}" for name, messages in exc.message_dict.items() for message in messages]
        params = parse_params({})
    sprints = list(
        Backlog.objects.filter(project=project, type=BacklogType.SPRINT, starts_on__isnull=False, ends_on__isnull=False)
        .order_by("-starts_on", "slug")
        .values_list("slug", "name")
    )
    chosen = None
    if query.get("sprint"):
        chosen = (
            Backlog.objects.filter(project=project, slug=query["sprint"], type=BacklogType.SPRINT)
            .exclude(starts_on=None)
            .exclude(ends_on=None)
            .first()
        )
        if chosen is None:
            errors.append(f"sprint: no sprint backlog '{query['sprint'][:100]}' with dates in this project.")
    reports = figures.project_reports(project, params, reader=reader, sprint_backlog=chosen)
    return {
        "charts": charts_for(reports),
        "chart_css": CHART_CSS,
        "params": params,
        "param_errors": errors,
        "sprints": sprints,
        "chosen_sprint": reports["sprint"]["sprint"] if reports["sprint"] else "",
    }
