"""Retention for the append-only audit log: `manage.py purge_audit_log --before DATE`.

Without --yes it only reports what would go. With --yes it deletes the rows older than
DATE in one transaction and appends an "audit.purged" row saying what it removed. It is
the only way rows leave audit_log: on PostgreSQL a trigger refuses every other DELETE."""

from __future__ import annotations

from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.context import write_context
from audit.services import audit_purge


def parse_cutoff(raw: str) -> datetime:
    """YYYY-MM-DD (midnight, in TIME_ZONE) or an ISO 8601 date and time."""
    day = parse_date(raw)
    moment = datetime.combine(day, time.min) if day else parse_datetime(raw)
    if moment is None:
        raise CommandError(f"--before {raw!r}: give a date (2025-01-31) or an ISO date and time.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Delete audit_log rows older than --before (retention); records the purge in the audit log."

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="delete rows with a timestamp before this date")
        parser.add_argument("--yes", action="store_true", help="really delete (otherwise only report)")

    def handle(self, *args, before: str, yes: bool, **options):
        cutoff = parse_cutoff(before)
        try:
            with write_context(source="cli"):
                result = audit_purge(actor=None, before=cutoff, dry_run=not yes)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        span = ""
        if result["matched"]:
            span = f" (from {result['oldest']:%Y-%m-%d %H:%M:%S} to {result['newest']:%Y-%m-%d %H:%M:%S})"
        if not yes:
            self.stdout.write(
                f"{result['matched']} audit row(s) older than {cutoff.isoformat()}{span} would be deleted; "
                "nothing changed. Run again with --yes to delete them."
            )
            return
        if not result["matched"]:
            self.stdout.write(f"No audit rows older than {cutoff.isoformat()}; nothing deleted.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {result['deleted']} audit row(s) older than {cutoff.isoformat()}{span}; "
                f"recorded as audit row {result['audit_id']} (audit.purged)."
            )
        )
