"""manage.py export_stories --project SLUG --format markdown|json|csv [--epic …] [--status …] --output PATH"""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from stories.exporter import FORMATS, check_export_filters, stories_for_export, stream_export
from stories.models import Project
from storyhub.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Export a project's stories: markdown (a zip of story files), json (everything, with dependencies "
        "and history) or csv (one row per story). Streams, so memory stays flat. --output - writes to stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", choices=FORMATS, default="markdown")
        parser.add_argument("--epic", help="only this epic (slug)")
        parser.add_argument("--status", help="only these statuses (slugs, comma-separated)")
        parser.add_argument("--output", required=True, metavar="PATH", help="file to write ('-' for stdout)")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        fmt, epic, status = options["format"], options["epic"], options["status"]
        try:
            check_export_filters(project, epic=epic, status=status)
        except ValidationError as exc:
            raise CommandError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from None
        count = stories_for_export(project, epic=epic, status=status).count()
        target = options["output"]
        # A progress bar when writing to a file from a terminal (stdout may be the export).
        bar = ProgressBar(sys.stderr) if target != "-" else None
        chunks = stream_export(
            project, fmt, epic=epic, status=status, progress=(lambda done: bar("export", done, count)) if bar else None
        )
        if target == "-":
            out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
            for chunk in chunks:
                if out is not None:
                    out.write(chunk)
                else:
                    self.stdout.write(chunk.decode("utf-8", "replace"), ending="")
            if out is not None:
                out.flush()
            return
        partial = f"{target}.partial"
        try:
            with open(partial, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            os.replace(partial, target)
        except OSError as exc:
            raise CommandError(f"Cannot write {target}: {exc.strerror or exc}") from None
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        self.stdout.write(self.style.SUCCESS(f"Exported {count} stories of {project.slug} as {fmt} to {target}."))
