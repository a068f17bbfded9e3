from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from storyhub.backups import BackupError, backup, table_row_counts


class Command(BaseCommand):
    help = (
        "Back up the whole database to FILE: pg_dump custom format on PostgreSQL, the online "
        "backup API on SQLite. Restore with `manage.py restore FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", required=True, help="file to write (replaced if it exists)")
        parser.add_argument("--database", default="default")

    def handle(self, *args, output, database, **options):
        path = Path(output)
        try:
            backup(database, path)
        except BackupError as exc:
            raise CommandError(str(exc))
        rows = sum(table_row_counts(database).values())
        self.stdout.write(self.style.SUCCESS(f"backup written to {path} ({path.stat().st_size} bytes, {rows} rows)"))
