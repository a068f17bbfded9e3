# StoryHub production image: gunicorn + whitenoise on a slim official Python base.
#   docker compose up --build        (see docker-compose.yml and README "Deployment")
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=storyhub.settings.production \
    GUNICORN_BIND=0.0.0.0:8000

# pg_dump / pg_restore for `manage.py backup` and `restore` (same major version as the db service).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image; whitenoise serves them compressed with
# far-future cache headers. The app's bytecode is compiled here too: with
# PYTHONDONTWRITEBYTECODE every `manage.py` run (the healthcheck's included) would otherwise
# compile ~70 modules, 0.25 s. The settings need a key and hosts to load: build-only dummies.
RUN DJANGO_SECRET_KEY=build-only-dummy-key-not-used-at-runtime \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q -j 0 /app \
    && chmod +x docker-entrypoint.sh

# Run as an unprivileged user; /app/backups is where `manage.py backup` writes in compose.
RUN groupadd --system storyhub \
    && useradd --system --gid storyhub --home-dir /app --no-create-home storyhub \
    && mkdir -p /app/backups \
    && chown storyhub:storyhub /app/backups
USER storyhub

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "manage.py", "healthcheck"]

ENTRYPOINT ["./docker-entrypoint.sh"]
