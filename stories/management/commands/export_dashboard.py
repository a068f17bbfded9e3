"""manage.py export_dashboard --output DIR [--user USERNAME | --system] [--project SLUG …] [--tz …] [--from …] [--to …]"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from stories.models import Project
from stories.reports.dashboard import export_dashboard
from stories.reports.params import parse_params
from stories.selectors import project_list_for_user


class Command(BaseCommand):
    help = (
        "Write the reports as JSON per project plus one self-contained index.html (no network needed) into DIR, "
        "ready to publish (e.g. GitHub Pages). Whose view it is must be said: --user USERNAME exports what that "
        "user may see (and the cross-project report hides the rest), --system exports every project."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, metavar="DIR", help="directory to write into (created)")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="export as this user: only the projects they are a member of")
        who.add_argument("--system", action="store_true", help="a system export: every project, nothing hidden")
        parser.add_argument("--project", action="append", default=[], help="only this project (slug; repeatable)")
        parser.add_argument("--tz", default="UTC", help="IANA time zone the days are cut in")
        parser.add_argument("--from", dest="start", help="first day (YYYY-MM-DD; default 12 weeks before --to)")
        parser.add_argument("--to", dest="end", help="last day (YYYY-MM-DD; default today)")

    def handle(self, *args, **options):
        try:
            params = parse_params({"tz": options["tz"], "from": options["start"] or "", "to": options["end"] or ""})
        except ValidationError as exc:
            raise CommandError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from None
        if options["system"]:
            reader, who = None, "(system export: every project)"
            projects = Project.objects.all()
        else:
            reader = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if reader is None:
                raise CommandError(f"No active user '{options['user']}'.")
            who = f"as {reader.get_username()}"
            projects = project_list_for_user(user=reader)
        projects = projects.order_by("slug")
        if options["project"]:
            wanted = set(options["project"])
            projects = projects.filter(slug__in=wanted)
            missing = wanted - set(projects.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No project {', '.join(sorted(missing))} (or not visible to this export).")
        written = export_dashboard(
            projects=list(projects), params=params, reader=reader, output=Path(options["output"]), who=who
        )
        self.stdout.write(f"Wrote {len(written) - 1} project file(s) and index.html to {options['output']}.")
