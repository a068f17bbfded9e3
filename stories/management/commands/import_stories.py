"""manage.py import_stories PATH… --project SLUG [--backlog SLUG] [--dry-run] [--continue-on-error]"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from stories.importer import ImportSourceError, import_stories
from stories.models import Backlog, Project
from storyhub.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Import story files (markdown with YAML front matter, or plain markdown) from files, directory "
        "trees (*.md, *.txt) or zips into a project. Atomic unless --continue-on-error. "
        "Exit status: 0 all imported, 1 nothing written because of bad files, 2 some files failed "
        "(--continue-on-error)."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--backlog", help="put the imported stories into this backlog (slug)")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument(
            "--continue-on-error", action="store_true", help="write the good files and list the bad ones"
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        backlog = None
        if options["backlog"]:
            backlog = Backlog.objects.filter(project=project, slug=options["backlog"]).first()
            if backlog is None:
                raise CommandError(f"No backlog '{options['backlog']}' in project '{project.slug}'.")
        started = time.perf_counter()
        try:
            report = import_stories(
                options["paths"],
                project=project,
                actor=None,
                backlog=backlog,
                dry_run=options["dry_run"],
                continue_on_error=options["continue_on_error"],
                progress=ProgressBar(sys.stderr),
            )
        except ImportSourceError as exc:
            raise CommandError(str(exc)) from None
        elapsed = time.perf_counter() - started
        self._print(report, options["verbosity"])
        counts = report.as_dict()
        summary = (
            f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"{counts['failed']} failed"
        )
        skipped = report.count("skipped")
        if skipped:
            summary += f", {skipped} not written"
        summary += f" ({len(report.files)} files in {elapsed:.1f}s)"
        if report.dry_run:
            summary += " — dry run: nothing was written"
        if report.ok:
            self.stdout.write(self.style.SUCCESS(summary))
            return
        self.stdout.write(summary)
        if options["continue_on_error"]:
            raise CommandError(f"{counts['failed']} files failed; the others were imported.", returncode=2)
        raise CommandError(f"{counts['failed']} files cannot be imported; nothing was written.", returncode=1)

    def _print(self, report, verbosity: int) -> None:
        """Failures and warnings always; every file for small imports or with -v 2."""
        every_file = verbosity >= 2 or (verbosity >= 1 and len(report.files) <= 200)
        for result in report.files:
            if result.outcome == "failed":
                where = f"{result.path}:{result.line}" if result.line else result.path
                self.stdout.write(self.style.ERROR(f"  failed     {where}  {result.reason}"))
            elif every_file:
                self.stdout.write(f"  {result.outcome:10} {result.path}  {result.key}")
            if verbosity >= 1:
                for warning in result.warnings:
                    self.stdout.write(self.style.WARNING(f"  warning    {result.path}  {warning}"))
