from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from storyhub.backups import BackupError, data_tables_with_rows, restore, table_row_counts


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the database, replacing its contents. "
        "Refuses a database that already holds data unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the backup file")
        parser.add_argument("--database", default="default")
        parser.add_argument("--force", action="store_true", help="overwrite a database that already holds data")

    def handle(self, *args, file, database, force, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"backup file not found: {path}")
        occupied = data_tables_with_rows(database)
        if occupied and not force:
            shown = ", ".join(occupied[:8]) + (", …" if len(occupied) > 8 else "")
            raise CommandError(
                f"refusing to restore: the {database!r} database is not empty (rows in {shown}). "
                "Restore into an empty database, or pass --force to replace its contents."
            )
        try:
            restore(database, path)
        except BackupError as exc:
            raise CommandError(str(exc))
        counts = table_row_counts(database)
        self.stdout.write(self.style.SUCCESS(f"restored {path}: {sum(counts.values())} rows in {len(counts)} tables"))
        self.stdout.write("If the backup came from an older StoryHub release, run `python manage.py migrate` next.")
