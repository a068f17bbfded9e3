"""Retention for the event outbox: `manage.py purge_events --before DATE [--yes]`.

Without --yes it only reports. Events still to be published, or with a delivery still
pending, always stay (so does the audit log: see purge_audit_log)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.context import write_context
from audit.management.commands.purge_audit_log import parse_cutoff
from events.services import outbox_purge


class Command(BaseCommand):
    help = "Delete published events (and their finished deliveries) older than --before."

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="delete events that happened before this date")
        parser.add_argument("--yes", action="store_true", help="really delete (otherwise only report)")

    def handle(self, *args, before: str, yes: bool, **options):
        cutoff = parse_cutoff(before)
        try:
            with write_context(source="cli"):
                result = outbox_purge(actor=None, before=cutoff, dry_run=not yes)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        verb = "deleted" if yes else "would be deleted (add --yes)"
        self.stdout.write(
            f"{result['events']} event(s) and {result['pings']} test ping(s) before {cutoff:%Y-%m-%d} {verb}."
        )
