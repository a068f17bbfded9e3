from django.core.management.base import BaseCommand, CommandError

from storyhub.health import database_status


class Command(BaseCommand):
    help = "Exit 0 when the database answers and no migration is pending; otherwise print why and exit 1."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, database, **options):
        ok, reason, pending = database_status(database)
        if not ok:
            for name in pending:
                self.stderr.write(f"  pending: {name}")
            raise CommandError(f"unhealthy: {reason}")
        self.stdout.write(self.style.SUCCESS("healthy: database answers, no pending migrations"))
