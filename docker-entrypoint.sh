#!/bin/sh
# StoryHub container entrypoint: wait for the database, apply migrations, then replace
# this shell with gunicorn (so it is PID 1 and gets SIGTERM directly).
#
# Works the same from a checkout: `. .venv/bin/activate && ./docker-entrypoint.sh`.
# Any arguments replace the gunicorn step, e.g. `docker compose run web python manage.py backup ...`.
#
# Environment: the settings' variables (DATABASE_URL or DB_*, DJANGO_*), plus
#   PYTHON                 interpreter to use (default: python)
#   DB_WAIT_TIMEOUT        seconds to wait for the database (default 60)
#   DJANGO_MIGRATE         set to "false" to skip `migrate` (e.g. when a release job does it)
#   GUNICORN_BIND          address to listen on (default 0.0.0.0:8000; read by gunicorn.conf.py)
set -eu

cd "$(dirname "$0")"
PYTHON="${PYTHON:-python}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-storyhub.settings.production}"
export GUNICORN_BIND="${GUNICORN_BIND:-0.0.0.0:8000}"

echo "entrypoint: waiting for the database (up to ${DB_WAIT_TIMEOUT:-60}s)" >&2
"$PYTHON" scripts/wait_for_db.py --timeout "${DB_WAIT_TIMEOUT:-60}"

if [ "${DJANGO_MIGRATE:-true}" != "false" ]; then
    echo "entrypoint: applying migrations" >&2
    "$PYTHON" manage.py migrate --noinput
    # The cache table when CACHE_URL=dbcache://… (a no-op for other caches).
    "$PYTHON" manage.py createcachetable
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

echo "entrypoint: starting gunicorn on ${GUNICORN_BIND}" >&2
exec "$PYTHON" -m gunicorn storyhub.wsgi -c gunicorn.conf.py
