"""The static dashboard (`manage.py export_dashboard`): one JSON file of every report per
project and one self-contained index.html that draws them. The page needs no network:
its CSS, its SVG (the same server-side charts as the admin's Reports page) and its few
lines of JavaScript (a project filter) are inline, nothing is fetched."""

from __future__ import annotations

import json
from pathlib import Path

from django.utils.html import escape
from django.utils.text import slugify

from ..models import Project
from . import figures
from .charts import CHART_CSS, charts_for
from .params import ReportParams

PAGE_CSS = """
body { margin: 0; font-family: system-ui, sans-serif; color: #1b1b1b; background: #f6f7f9; }
header { background: #264b5d; color: #fff; padding: 12px 16px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; font-size: 13px; opacity: .85; }
nav { padding: 8px 16px; }
nav select { font-size: 14px; padding: 4px; max-width: 100%; }
section.project { padding: 8px 16px 24px; }
section.project h2 { font-size: 18px; margin: 12px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 480px), 1fr)); gap: 12px; }
figure.report { margin: 0; background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 8px; min-width: 0; }
figure.report figcaption { font-size: 12px; color: #444; margin-top: 4px; }
figure.report dl { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0 0; font-size: 12px; }
figure.report dt { color: #666; } figure.report dd { margin: 0 0 0 4px; font-weight: 600; }
"""

PAGE_JS = """
document.getElementById('project-filter').addEventListener('change', function (event) {
  var wanted = event.target.value;
  document.querySelectorAll('section.project').forEach(function (section) {
    section.hidden = wanted !== '' && section.id !== wanted;
  });
});
"""


def file_name(project: Project) -> str:
    return f"{slugify(project.slug) or 'project'}.json"


def figure_html(chart) -> str:
    summary = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape('–' if value is None else value)}</dd>" for label, value in chart.summary
    )
    note = f"<figcaption>{escape(chart.note)}</figcaption>" if chart.note else ""
    return (
        f'<figure class="report" id="{escape(chart.name)}"><div class="chart-scroll">{chart.svg}</div>'
        f"{f'<dl>{summary}</dl>' if summary else ''}{note}</figure>"
    )


def page(sections: list[tuple[Project, dict]], params: ReportParams, *, who: str) -> str:
    options = "".join(f'<option value="project-{escape(p.slug)}">{escape(p.slug)}</option>' for p, _ in sections)
    body = []
    for project, reports in sections:
        charts = "".join(figure_html(c) for c in charts_for(reports))
        body.append(
            f'<section class="project" id="project-{escape(project.slug)}" data-project="{escape(project.slug)}">'
            f"<h2>{escape(project.name)} <small>({escape(project.slug)})</small></h2>"
            f'<div class="charts">{charts}</div></section>'
        )
    if not sections:
        body.append('<section class="project"><p>No project to show.</p></section>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>StoryHub dashboard</title>"
        f"<style>{PAGE_CSS}{CHART_CSS}</style></head><body>"
        f"<header><h1>StoryHub dashboard</h1><p>{escape(params.start)} – {escape(params.end)} ({escape(params.tz.key)}),"
        f" generated {escape(params.now.strftime('%Y-%m-%d %H:%M UTC'))} {escape(who)}</p></header>"
        f'<nav><label>Project <select id="project-filter"><option value="">all</option>{options}</select></label></nav>'
        f"<main>{''.join(body)}</main><script>{PAGE_JS}</script></body></html>\n"
    )


def export_dashboard(*, projects: list[Project], params: ReportParams, reader, output: Path, who: str) -> list[Path]:
    """Write <slug>.json per project and index.html into `output`; return the paths.
    `reader` is whose view the reports take (None: the system, which sees every project)."""
    output.mkdir(parents=True, exist_ok=True)
    written, sections = [], []
    for project in projects:
        reports = figures.project_reports(project, params, reader=reader)
        path = output / file_name(project)
        path.write_text(
            json.dumps(
                {"project": project.slug, "name": project.name, **params.as_dict(), "reports": reports},
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        written.append(path)
        sections.append((project, reports))
    index = output / "index.html"
    index.write_text(page(sections, params, who=who))
    written.append(index)
    return written
