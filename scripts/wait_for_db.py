"""Wait until a database URL accepts connections (used by make and the container entrypoint).

Exit 0 when it answers within --timeout seconds, 1 otherwise. SQLite always answers.

Without --url the URL comes from the environment exactly as the settings build it
(DATABASE_URL, else DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, else SQLite), and the
named database itself is probed; with --url the server's `postgres` maintenance database
is probed (the named one may not exist yet, e.g. before a test run creates it)."""

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse


def url_from_settings() -> str:
    """The database URL the settings would use, without configuring Django."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from storyhub.settings.base import database_url

    return database_url()


def redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="database URL; default: the one the settings build from the environment")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    url = args.url or url_from_settings()
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        return 0
    import psycopg

    dbname = "postgres" if args.url else (unquote(parsed.path.lstrip("/")) or "postgres")
    deadline = time.monotonic() + args.timeout
    last_error = ""
    while True:
        try:
            conn = psycopg.connect(
                host=parsed.hostname or "localhost",
                port=parsed.port or 5432,
                user=unquote(parsed.username or "postgres"),
                password=unquote(parsed.password) if parsed.password else None,
                dbname=dbname,
                connect_timeout=3,
            )
            conn.close()
            if not args.quiet and not args.url:
                print(f"database is up: {redact(url)}", file=sys.stderr)
            return 0
        except psycopg.Error as exc:
            last_error = str(exc).strip()
        if time.monotonic() >= deadline:
            print(f"database not reachable at {redact(url)}: {last_error}", file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
