"""manage.py sync_projects [--project SLUG …] [--watch --interval S]

Sync every linked project (or the ones named) with its git repository, both ways. With
--watch it is the periodic job: it syncs, sleeps --interval seconds, and again, until
stopped (SIGTERM / Ctrl-C ends it between two syncs). Errors are one line per project,
never a traceback; with --watch a failing project is retried on the next round."""

from __future__ import annotations

import signal
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection

from stories.models import SyncLink
from storyhub.progress import ProgressBar


class Command(BaseCommand):
    help = "Sync linked projects with their git repositories (pull, then push). --watch runs it every --interval s."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", default=[], help="project slug (repeatable)")
        parser.add_argument("--watch", action="store_true", help="keep syncing every --interval seconds")
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds (default 10)")
        parser.add_argument("--rounds", type=int, default=0, help=argparse_hidden())
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="queue one background task per project (run by `manage.py db_worker --queue-name default`)",
        )

    def handle(self, *args, **options):
        if options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        links = SyncLink.objects.filter(enabled=True).select_related("project")
        if options["project"]:
            links = links.filter(project__slug__in=options["project"])
            missing = set(options["project"]) - set(links.values_list("project__slug", flat=True))
            if missing:
                raise CommandError(f"Not linked to a repository (or disabled): {', '.join(sorted(missing))}.")
        if options["enqueue"]:
            from stories.sync.tasks import sync_project_task

            for link in links:
                result = sync_project_task.enqueue(link.project_id)
                self.stdout.write(f"{link.project.slug}: sync queued ({result.id})")
            return
        stop = {"now": False}
        if options["watch"]:
            signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        rounds = 0
        while True:
            failures = self._round(list(links), options["verbosity"])
            rounds += 1
            if not options["watch"] or stop["now"] or (options["rounds"] and rounds >= options["rounds"]):
                break
            if not connection.in_atomic_block:  # (a test's transaction)
                close_old_connections()  # a long-running job drops connections past their age
            deadline = time.monotonic() + options["interval"]
            while time.monotonic() < deadline and not stop["now"]:
                time.sleep(min(0.5, options["interval"]))
        if failures and not options["watch"]:
            raise CommandError(f"{failures} project(s) could not be synced.", returncode=1)

    def _round(self, links, verbosity: int) -> int:
        from stories.sync.engine import sync_project  # dulwich only when a sync runs
        from stories.sync.gitrepo import GitSyncError

        failures = 0
        for link in links:
            started = time.perf_counter()
            try:
                report = sync_project(actor=None, project=link.project, progress=ProgressBar(sys.stderr))
            except GitSyncError as exc:
                failures += 1
                self.stderr.write(self.style.ERROR(f"{link.project.slug}: sync failed: {exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - one line per project, the others still sync
                failures += 1
                self.stderr.write(self.style.ERROR(f"{link.project.slug}: sync failed: {type(exc).__name__}: {exc}"))
                continue
            elapsed = time.perf_counter() - started
            if report.changed or verbosity >= 2:
                self.stdout.write(f"{report.summary()} ({elapsed:.1f}s)")
                for failed in report.failed:
                    self.stdout.write(self.style.ERROR(f"  failed     {failed['path']}  {failed['reason']}"))
                for path in report.conflicts:
                    self.stdout.write(self.style.WARNING(f"  conflict   {path}  changed in StoryHub and in git"))
        return failures


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
