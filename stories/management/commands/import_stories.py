"""manage.py import_stories PATH… --project SLUG [--backlog SLUG] [--dry-run] [--atomic]
[--exclude GLOB]… [--no-default-excludes] [--repository NAME]"""

from __future__ import annotations

import sys
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from stories.importer import ImportSourceError, import_stories
from stories.models import Backlog, Project
from storyhub.errors import ApplicationError
from storyhub.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Import story files (markdown with YAML front matter, or plain markdown) from directory trees "
        "(*.md, *.txt), files, zips or a JSON export into a project, and record the run (an import run "
        "in the admin and the API). A bad file fails alone; duplicates and keys owned by another file are "
        "parked as conflicts. Exit status: 0 every file imported (or unchanged, excluded), 1 nothing "
        "written because of bad files (--atomic), 2 some files failed or were parked."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--backlog", help="put the imported stories into this backlog (slug)")
        parser.add_argument("--dry-run", action="store_true", help="report what an import would do; write nothing")
        parser.add_argument("--atomic", action="store_true", help="all or nothing: one bad file and nothing is written")
        parser.add_argument(
            "--continue-on-error",
            action="store_true",
            help="write the good files and list the bad ones (the default; kept for scripts)",
        )
        parser.add_argument(
            "--exclude",
            action="append",
            default=[],
            metavar="GLOB",
            help="leave out files matching GLOB (a name, or a path in the repository; repeatable)",
        )
        parser.add_argument(
            "--no-default-excludes",
            action="store_true",
            help="import README, CHANGELOG, LICENSE, CONTRIBUTING… files too",
        )
        parser.add_argument("--repository", help="the repository's identifier (default: its origin URL or name)")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        if options["atomic"] and options["continue_on_error"]:
            raise CommandError("Give --atomic or --continue-on-error, not both.")
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
                continue_on_error=not options["atomic"],
                progress=ProgressBar(sys.stderr),
                excludes=options["exclude"],
                default_excludes=not options["no_default_excludes"],
                repository=options["repository"],
            )
        except ImportSourceError as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        elapsed = time.perf_counter() - started
        self._print(report, options["verbosity"])
        self._finish(report, elapsed, atomic=options["atomic"])

    def _finish(self, report, elapsed: float, *, atomic: bool) -> None:
        counts = report.counts()
        parts = [f"{counts[o]} {o}" for o in ("created", "updated", "unchanged", "failed")]
        names = {"conflict": "parked as conflicts", "excluded": "excluded", "skipped": "not written"}
        parts += [f"{counts[o]} {name}" for o, name in names.items() if counts[o]]
        summary = ", ".join(parts) + f" ({len(report.files)} files in {elapsed:.1f}s; import run #{report.run_id})"
        failed, parked = counts["failed"], counts["conflict"]
        if report.dry_run:
            summary += " — dry run: nothing was written"
        if not failed and not parked:
            self.stdout.write(self.style.SUCCESS(summary))
            return
        self.stdout.write(summary)
        if atomic and failed:
            raise CommandError(f"{failed} files cannot be imported; nothing was written.", returncode=1)
        dry = report.dry_run
        problems = []
        if failed:
            problems.append(f"{failed} files {'would fail' if dry else 'failed'}")
        if parked:
            problems.append(
                f"{parked} files {'would be' if dry else 'were'} parked as conflicts (resolved in the admin)"
            )
        rest = "the other files would be imported (dry run: nothing was written)" if dry else "the others were imported"
        raise CommandError(f"{'; '.join(problems)}; {rest}.", returncode=2)

    def _print(self, report, verbosity: int) -> None:
        """Failures, conflicts and warnings always; every file for small imports or with -v 2."""
        every_file = verbosity >= 2 or (verbosity >= 1 and len(report.files) <= 200)
        for result in report.files:
            where = f"{result.shown}:{result.line}" if result.line else result.shown
            if result.outcome == "failed":
                self.stdout.write(self.style.ERROR(f"  failed     {where}  {result.reason}"))
            elif result.outcome == "conflict":
                self.stdout.write(self.style.WARNING(f"  conflict   {where}  {result.reason}"))
            elif every_file:
                detail = result.reason if result.outcome in ("excluded", "skipped") else result.key
                self.stdout.write(f"  {result.outcome:10} {result.shown}  {detail}")
            if verbosity >= 1:
                for warning in result.warnings:
                    self.stdout.write(self.style.WARNING(f"  warning    {result.shown}  {warning}"))
