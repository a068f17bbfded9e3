"""Server-side SVG of every report (the admin's Reports page and the static dashboard
draw the same pictures): no JavaScript, no external file. Each chart is one
`<svg class="report-chart" data-chart=NAME>` that scales to its container (viewBox,
width 100%), its data drawn as elements of class `mark`, each with a <title> tooltip.
Every text is escaped here; the result is marked safe for templates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

W, H = 600, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 40, 62
PALETTE = {
    "backlog": "#adb5bd",
    "unstarted": "#74a9e8",
    "started": "#f0b429",
    "completed": "#2e9d57",
    "cancelled": "#d9d9d9",
    "completed_points": "#2e9d57",
    "reopened_points": "#d64545",
    "net": "#1d4ed8",
    "scope": "#6c5ce7",
    "done": "#2e9d57",
    "remaining": "#d97706",
    "ideal": "#868e96",
    "bar": "#4c7bd9",
}


@dataclass
class Chart:
    name: str
    title: str
    svg: SafeString
    summary: list[tuple[str, object]] = field(default_factory=list)
    note: str = ""


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000):
        if value <= step * 4:
            return step * 4
    return value


def _frame(name: str, title: str, y_max: float, labels: Sequence[str], y_label: str) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" data-chart="{escape(name)}" viewBox="0 0 {W} {H}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="8" y="20">{escape(title)}</text>',
    ]
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        value = y_max * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    if y_label:
        out.append(
            f'<text class="axis-label" x="12" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" text-anchor="middle">{escape(y_label)}</text>'
        )
    step = max(1, -(-len(labels) // 8))
    slot = (W - LEFT - RIGHT) / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % step == 0:
            x = LEFT + slot * (i + 0.5)
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    return out


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    out, x = [], 8
    for label, colour in items:
        out.append(f'<rect class="legend-swatch" x="{x}" y="{H - 20}" width="14" height="14" fill="{colour}"/>')
        out.append(f'<text class="legend" x="{x + 19}" y="{H - 8}">{escape(label)}</text>')
        x += 32 + 8 * len(label)
    return out


def _close(out: list[str], empty: bool) -> SafeString:
    if empty:
        out.append(
            f'<text class="empty-note" x="{W / 2:.0f}" y="{TOP + (H - TOP - BOTTOM) / 2:.0f}" text-anchor="middle">No data in this range</text>'
        )
    out.append("</svg>")
    return mark_safe("\n".join(out))  # noqa: S308 -- every interpolated text is escaped above


def bar_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    y_label: str = "",
) -> SafeString:
    """Grouped bars: one group per label, one bar per series (negative values clip at 0)."""
    top = max([v or 0 for _, values, _ in series for v in values] + [0])
    y_max = _nice_max(top)
    out = _frame(name, title, y_max, labels, y_label)
    plot_h, slot = H - TOP - BOTTOM, (W - LEFT - RIGHT) / max(1, len(labels))
    width = slot * 0.8 / max(1, len(series))
    for i, label in enumerate(labels):
        for j, (series_name, values, colour) in enumerate(series):
            value = max(0.0, float(values[i] or 0))
            h = plot_h * value / y_max
            x = LEFT + slot * i + slot * 0.1 + width * j
            out.append(
                f'<rect class="mark bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(width - 1, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {escape(series_name)} {value:g}</title></rect>"
            )
    if len(series) > 1:
        out += _legend([(n, c) for n, _, c in series])
    return _close(out, top == 0)


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str, bool]],
    *,
    y_label: str = "",
) -> SafeString:
    """One polyline per series (dashed when asked); None values leave the line off."""
    values = [v for _, vals, _, _ in series for v in vals if v is not None]
    top = max(values + [0])
    y_max = _nice_max(top)
    out = _frame(name, title, y_max, labels, y_label)
    plot_h, slot = H - TOP - BOTTOM, (W - LEFT - RIGHT) / max(1, len(labels))
    for series_name, vals, colour, dashed in series:
        points = [
            (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * v / y_max, labels[i], v)
            for i, v in enumerate(vals)
            if v is not None
        ]
        if not points:
            continue
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        path = " ".join(f"{'M' if k == 0 else 'L'}{x:.1f},{y:.1f}" for k, (x, y, _, _) in enumerate(points))
        out.append(
            f'<path class="mark line" d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}><title>{escape(series_name)}</title></path>'
        )
        for x, y, label, v in points:
            out.append(
                f'<circle class="mark dot" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(label)}: {escape(series_name)} {v:g}</title></circle>'
            )
    out += _legend([(n, c) for n, _, c, _ in series])
    return _close(out, not values)


def stacked_area(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    y_label: str = "",
) -> SafeString:
    """Series stacked bottom-up (the first at the bottom), one filled band each."""
    totals = [sum(float(vals[i]) for _, vals, _ in series) for i in range(len(labels))]
    top = max(totals + [0])
    y_max = _nice_max(top)
    out = _frame(name, title, y_max, labels, y_label)
    plot_h, slot = H - TOP - BOTTOM, (W - LEFT - RIGHT) / max(1, len(labels))
    base = [0.0] * len(labels)
    for series_name, vals, colour in series:
        upper = [base[i] + float(vals[i]) for i in range(len(labels))]
        xs = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
        ys_up = [TOP + plot_h - plot_h * u / y_max for u in upper]
        ys_down = [TOP + plot_h - plot_h * b / y_max for b in base]
        if labels:
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys_up, strict=True))
            d += " L" + " L".join(f"{x:.1f},{y:.1f}" for x, y in reversed(list(zip(xs, ys_down, strict=True)))) + " Z"
            last = f"{labels[-1]}: {series_name} {float(vals[-1]):g}"
            out.append(
                f'<path class="mark band" data-series="{escape(series_name)}" d="{d}" fill="{colour}" fill-opacity="0.85"><title>{escape(last)}</title></path>'
            )
        base = upper
    out += _legend([(n, c) for n, _, c in series])
    return _close(out, top == 0)


def progress_bars(name: str, title: str, rows: Sequence[tuple[str, float, float, str]]) -> SafeString:
    """One row per item: its label and a note on a line, then a bar of done of total."""
    row_h = 46
    height = max(TOP + row_h * len(rows) + 8, 90)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" data-chart="{escape(name)}" viewBox="0 0 {W} {height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="8" y="20">{escape(title)}</text>',
    ]
    span = W - 16
    for i, (label, done, total, note) in enumerate(rows):
        y = TOP + i * row_h
        share = (done / total) if total else 0
        short = label if len(label) <= 30 else label[:29] + "…"
        out.append(f'<text class="tick" x="8" y="{y + 14}">{escape(short)}</text>')
        out.append(f'<text class="note" x="{W - 8}" y="{y + 14}" text-anchor="end">{escape(note)}</text>')
        out.append(f'<rect class="track" x="8" y="{y + 20}" width="{span}" height="16" fill="#e9ecef"/>')
        out.append(
            f'<rect class="mark bar" x="8" y="{y + 20}" width="{span * min(share, 1):.1f}" height="16" fill="{PALETTE["done"]}">'
            f"<title>{escape(label)}: {done:g} of {total:g}</title></rect>"
        )
    if not rows:
        out.append(
            f'<text class="empty-note" x="{W / 2:.0f}" y="{TOP + 24}" text-anchor="middle">Nothing to show</text>'
        )
    out.append("</svg>")
    return mark_safe("\n".join(out))  # noqa: S308 -- every interpolated text is escaped above


# --------------------------------------------------------------------------- the reports as charts


def _velocity(r: dict) -> Chart:
    labels = [row["week"][5:] for row in r["rows"]]
    svg = bar_chart(
        "velocity",
        "Velocity: points completed per week",
        labels,
        [
            ("completed", [row["completed_points"] for row in r["rows"]], PALETTE["completed_points"]),
            ("reopened", [row["reopened_points"] for row in r["rows"]], PALETTE["reopened_points"]),
        ],
        y_label="points",
    )
    return Chart("velocity", "Velocity", svg, [("average net points / week", r["average_net_points"])])


def _sprint(r: dict | None) -> list[Chart]:
    if r is None:
        note = "No sprint backlog with dates has started: give a backlog of type sprint its starts_on / ends_on."
        empty = line_chart("burndown", "Burndown", [], [])
        return [
            Chart("burndown", "Burndown", empty, note=note),
            Chart("burnup", "Burnup", line_chart("burnup", "Burnup", [], []), note=note),
        ]
    labels = [row["day"][5:] for row in r["rows"]]
    col = lambda name: [row[name] for row in r["rows"]]  # noqa: E731
    title = f"sprint {r['name']} ({r['starts_on']} – {r['ends_on']})"
    changes = "; ".join(f"{c['day']} {c['change']} {c['story']} ({c['points']:g} pts)" for c in r["scope_changes"])
    note = f"Scope changes: {changes}" if changes else "No scope change after the sprint started."
    down = line_chart(
        "burndown",
        f"Burndown, {title}",
        labels,
        [
            ("remaining points", col("remaining_points"), PALETTE["remaining"], False),
            ("ideal", col("ideal_points"), PALETTE["ideal"], True),
        ],
        y_label="points",
    )
    up = line_chart(
        "burnup",
        f"Burnup, {title}",
        labels,
        [
            ("scope points", col("scope_points"), PALETTE["scope"], False),
            ("completed points", col("done_points"), PALETTE["done"], False),
        ],
        y_label="points",
    )
    summary = [("starting scope (points)", r["initial_scope_points"]), ("scope changes", len(r["scope_changes"]))]
    return [Chart("burndown", "Burndown", down, summary, note), Chart("burnup", "Burnup", up, summary, note)]


def _cfd(r: dict) -> Chart:
    labels = [row["day"][5:] for row in r["rows"]]
    order = ["completed", "cancelled", "started", "unstarted", "backlog"]
    svg = stacked_area(
        "cumulative-flow",
        "Cumulative flow: stories per status category",
        labels,
        [(c, [row[c] for row in r["rows"]], PALETTE[c]) for c in order],
        y_label="stories",
    )
    last = r["rows"][-1] if r["rows"] else {}
    return Chart("cumulative-flow", "Cumulative flow", svg, [(c, last.get(c, 0)) for c in order])


def _times(r: dict, name: str, title: str) -> Chart:
    labels = [
        f"{row['from_days']}–{row['to_days']}" if row["to_days"] is not None else f"{row['from_days']}+"
        for row in r["rows"]
    ]
    svg = bar_chart(
        name,
        f"{title}: stories by days",
        labels,
        [("stories", [row["stories"] for row in r["rows"]], PALETTE["bar"])],
        y_label="stories",
    )
    summary = [
        ("stories", r["stories"]),
        ("p50 days", r["p50_days"]),
        ("p85 days", r["p85_days"]),
        ("p95 days", r["p95_days"]),
    ]
    return Chart(name, title, svg, summary)


def _throughput(r: dict) -> Chart:
    labels = [row["week"][5:] for row in r["rows"]]
    svg = bar_chart(
        "throughput",
        "Throughput: stories completed per week",
        labels,
        [("net stories", [row["net"] for row in r["rows"]], PALETTE["net"])],
        y_label="stories",
    )
    return Chart(
        "throughput",
        "Throughput",
        svg,
        [("total", r["total_net"]), ("p50 / week", r["per_week"]["p50"]), ("p85 / week", r["per_week"]["p85"])],
    )


def _wip(r: dict) -> Chart:
    labels = [
        f"{b['from_days']}–{b['to_days']}" if b["to_days"] is not None else f"{b['from_days']}+" for b in r["buckets"]
    ]
    svg = bar_chart(
        "ageing-wip",
        "Ageing work in progress: stories by days since started",
        labels,
        [("stories", [b["stories"] for b in r["buckets"]], PALETTE["started"])],
        y_label="stories",
    )
    oldest = ", ".join(f"{row['key']} ({row['age_days']:g} d)" for row in r["rows"][:5])
    return Chart(
        "ageing-wip",
        "Ageing WIP",
        svg,
        [("in progress", r["stories"]), ("p85 age (days)", r["p85_age_days"])],
        f"Oldest: {oldest}" if oldest else "",
    )


def _epics(r: dict) -> Chart:
    rows = [
        (
            row["name"] or row["epic"],
            float(row["points_done"]),
            float(row["points_total"]),
            f"{row['points_done']:g}/{row['points_total']:g} pts, {row['open_blockers']} open blockers",
        )
        for row in r["rows"]
    ]
    return Chart(
        "epic-progress", "Epic progress", progress_bars("epic-progress", "Epic progress: points done of total", rows)
    )


def _cross(r: dict) -> Chart:
    rows = []
    for row in r["rows"]:
        other = "(hidden)" if isinstance(row["project"], dict) else row["project"]
        verb = "waits for" if row["direction"] == "waits_for" else "blocks"
        if row["open_links"] is None:
            rows.append(
                (
                    f"{verb} {other}",
                    float(row["stories_here"]),
                    float(row["stories_here"]),
                    f"{row['stories_here']} of our stories",
                )
            )
        else:
            rows.append(
                (
                    f"{verb} {other}",
                    float(row["open_links"]),
                    float(row["links"]),
                    f"{row['open_links']} open of {row['links']} links",
                )
            )
    svg = progress_bars("cross-project", "Cross-project blocks links (open of all)", rows)
    return Chart("cross-project", "Cross-project", svg, [("open cross-project blockers", len(r["open_blockers"]))])


def charts_for(reports: dict) -> list[Chart]:
    """Every chart of figures.project_reports()."""
    return [
        _velocity(reports["velocity"]),
        *_sprint(reports["sprint"]),
        _cfd(reports["cumulative_flow"]),
        _times(reports["cycle_time"], "cycle-time", "Cycle time"),
        _times(reports["lead_time"], "lead-time", "Lead time"),
        _throughput(reports["throughput"]),
        _wip(reports["ageing_wip"]),
        _epics(reports["epic_progress"]),
        _cross(reports["cross_project"]),
    ]


CHART_NAMES = [
    "velocity",
    "burndown",
    "burnup",
    "cumulative-flow",
    "cycle-time",
    "lead-time",
    "throughput",
    "ageing-wip",
    "epic-progress",
    "cross-project",
]

CHART_CSS = """
.chart-scroll { overflow-x: auto; }
.report-chart { display: block; width: 100%; min-width: 440px; height: auto; background: #fff; font-family: system-ui, sans-serif; }
.report-chart .chart-title { font-size: 17px; font-weight: 600; fill: #1b1b1b; }
.report-chart .tick, .report-chart .legend, .report-chart .note, .report-chart .axis-label { font-size: 14px; fill: #333; }
.report-chart .grid { stroke: #e5e7eb; stroke-width: 1; }
.report-chart .empty-note { font-size: 16px; fill: #868e96; }
.report-chart .mark:hover { opacity: .8; }
"""
