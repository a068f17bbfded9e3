"""Database backup and restore behind `manage.py backup` / `manage.py restore`.

PostgreSQL: `pg_dump --format=custom` and `pg_restore` (the password goes through the
PGPASSWORD environment variable, never the command line). SQLite: the online backup API
(`sqlite3.Connection.backup`), which copies a consistent snapshot while others write.
A backup restores only into the same database vendor."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from django.db import connections

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Tables `migrate` fills by itself; rows there do not make a database "non-empty".
MIGRATION_FILLED_TABLES = {"django_migrations", "django_content_type", "auth_permission"}


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


def vendor_of(alias: str) -> str:
    return connections[alias].vendor


def file_kind(path: Path) -> str:
    """'sqlite', 'postgresql' (custom-format dump) or 'unknown'."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    return "unknown"


def table_row_counts(alias: str) -> dict[str, int]:
    """Rows per table of the database (every table, not only Django's models)."""
    connection = connections[alias]
    qn = connection.ops.quote_name
    counts = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT COUNT(*) FROM {qn(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def data_tables_with_rows(alias: str) -> list[str]:
    return [t for t, n in table_row_counts(alias).items() if n and t not in MIGRATION_FILLED_TABLES]


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if not tool:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools matching the server "
            f"(Debian/Ubuntu: apt-get install postgresql-client-15; the StoryHub image has them)."
        )
    return tool


def _pg_args_and_env(alias: str) -> tuple[list[str], dict[str, str]]:
    settings = connections[alias].settings_dict
    args = []
    if settings.get("HOST"):
        args += ["--host", str(settings["HOST"])]
    if settings.get("PORT"):
        args += ["--port", str(settings["PORT"])]
    if settings.get("USER"):
        args += ["--username", str(settings["USER"])]
    args += ["--no-password", "--dbname", str(settings["NAME"])]
    env = dict(os.environ)
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings["PASSWORD"])
    options = settings.get("OPTIONS") or {}
    for option, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT")):
        if options.get(option):
            env[variable] = str(options[option])
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed (exit {result.returncode}): {result.stderr.strip()}")


def backup(alias: str, output: Path) -> None:
    """Write a backup of database `alias` to `output` (replaced atomically)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    vendor = vendor_of(alias)
    try:
        if vendor == "postgresql":
            args, env = _pg_args_and_env(alias)
            _run(
                [
                    _pg_tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--file",
                    str(partial),
                    *args,
                ],
                env,
            )
        elif vendor == "sqlite":
            connection = connections[alias]
            connection.ensure_connection()
            target = sqlite3.connect(partial)
            try:
                connection.connection.backup(target)
            finally:
                target.close()
        else:
            raise BackupError(f"backups of {vendor} databases are not supported")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def restore(alias: str, source: Path) -> None:
    """Replace the contents of database `alias` with the backup in `source`."""
    vendor = vendor_of(alias)
    kind = file_kind(source)
    if kind != vendor:
        what = {"sqlite": "an SQLite database", "postgresql": "a PostgreSQL custom-format dump"}.get(
            kind, "not a StoryHub backup (neither an SQLite file nor a pg_dump custom-format dump)"
        )
        hint = f"; restore it into a {kind} database" if kind != "unknown" else ""
        raise BackupError(f"{source} is {what}, but the {alias!r} database is {vendor}{hint}")
    connection = connections[alias]
    if vendor == "postgresql":
        _restore_postgresql(alias, source)
    else:
        connection.ensure_connection()
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            backup_db.backup(connection.connection)
        finally:
            backup_db.close()
        connection.close()


def _restore_postgresql(alias: str, source: Path) -> None:
    """One transaction: drop every table the database has now (also ones a newer release
    added that the backup does not know), then replay the dump. Any error rolls it all back."""
    args, env = _pg_args_and_env(alias)
    pg_restore, psql = _pg_tool("pg_restore"), _pg_tool("psql")
    connection = connections[alias]
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    # Close our own (pooled) connections so nothing of ours holds a lock the DROPs wait on.
    connection.close()
    if getattr(connection, "pool", None) is not None:
        connection.close_pool()
    drop = "SELECT 1"
    if tables:
        drop = "DROP TABLE IF EXISTS " + ", ".join(connection.ops.quote_name(t) for t in tables) + " CASCADE"
    # pg_restore writes the SQL script in full first: psql commits whatever input it got,
    # so a dump that breaks half-way must be caught before psql sees any of it.
    with tempfile.TemporaryDirectory(prefix="storyhub-restore-") as workdir:
        script = Path(workdir) / "restore.sql"
        _run(
            [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--file", str(script), str(source)],
            env,
        )
        result = subprocess.run(  # noqa: S603
            [psql, "--quiet", "--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--single-transaction",
             "--command", drop, "--file", str(script), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise BackupError(
            f"restore failed, nothing was changed (psql exit {result.returncode}): {result.stderr.strip()}"
        )
