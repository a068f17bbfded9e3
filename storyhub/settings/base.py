"""Settings shared by every environment.

Everything configurable comes from the environment through one ``environ.Env()``;
``.env`` in the working directory is read when present (see ``.env.example``).
"""

import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is a convenience for developers; real deployments pass the environment.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "storyhub.apps.StoryHubAdminConfig",  # django.contrib.admin with StoryHub's admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "rules",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "axes",  # admin login lockout (AXES_* below)
    "django_tasks",
    "django_tasks_db",
    "audit",
    "sessions_app",
    "stories",
    "mcp_app",
    "events",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestContextMiddleware",
    # With DATABASE_REPLICA_URL: GET / HEAD of a client that did not just write read from the replica.
    "storyhub.replica.ReplicaMiddleware",
    # A database that is down or too slow answers 503 + Retry-After, not a 500 traceback.
    "storyhub.middleware.DatabaseUnavailableMiddleware",
    "sessions_app.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, taking the user read in the session's own statement (sessions_app.backends).
    "sessions_app.middleware.AuthenticationMiddleware",
    # One read of the user's project roles per request for the admin's many checks.
    "stories.rules.RoleMemoMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "storyhub.urls"
WSGI_APPLICATION = "storyhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_url() -> str:
    """DATABASE_URL, else one assembled from DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD,
    else the embedded SQLite file in the working directory."""
    url = env("DATABASE_URL", default="")
    if url:
        return url
    host = env("DB_HOST", default="")
    if host:
        user = quote(env("DB_USER", default="postgres"), safe="")
        password = env("DB_PASSWORD", default="")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        return f"postgres://{auth}@{host}:{env.int('DB_PORT', default=5432)}/{env('DB_NAME', default='storyhub')}"
    return f"sqlite:///{Path.cwd() / 'db.sqlite3'}"


def database_config(url: str, *, statement_timeout_default: int = 0) -> dict:
    """Turn a database URL into Django's settings, with our tuning for each vendor.
    `statement_timeout_default` (ms) applies when DB_STATEMENT_TIMEOUT is not set."""
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock
            # at BEGIN so concurrent writers queue on busy_timeout instead of deadlocking.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        }
    elif config["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
        config["ENGINE"] = "storyhub.db.postgresql"  # Django's, with the C timestamptz loader
        config["CONN_HEALTH_CHECKS"] = True
        options = config.setdefault("OPTIONS", {})
        if env.bool("DB_POOL", default=True):
            # Django's native psycopg 3 pool; CONN_MAX_AGE must stay 0 with it.
            config["CONN_MAX_AGE"] = 0
            options["pool"] = {
                "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
                "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
                "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
            }
        else:
            config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
        # Milliseconds, 0 = no limit (production settings default to a limit). A statement
        # that runs longer is cancelled and the request answers 503 database_timeout
        # (storyhub.middleware) instead of holding a worker.
        statement_timeout = env.int("DB_STATEMENT_TIMEOUT", default=statement_timeout_default)
        if statement_timeout:
            options["options"] = f"{options.get('options', '')} -c statement_timeout={statement_timeout}".strip()
        if env.bool("DB_PGBOUNCER", default=False):
            for_transaction_pooling(config)
    config["ATOMIC_REQUESTS"] = False
    return config


def for_transaction_pooling(config: dict) -> dict:
    """A PostgreSQL config for a pooler in transaction mode (PgBouncer `pool_mode =
    transaction`): each transaction may run on a different server connection, so nothing
    may outlive one. StoryHub's own SQL already keeps to that (advisory locks are
    pg_advisory_xact_lock, set_config(..., true) is transaction-local); this turns off the
    rest: psycopg's automatic prepared statements (PgBouncer 1.18 cannot route them),
    Django's server-side cursors (WITH HOLD cursors outlive the transaction), and the
    `options` startup parameter PgBouncer refuses — set `statement_timeout` on the role
    instead (`ALTER ROLE storyhub SET statement_timeout = '30s'`, README "Operations")."""
    options = config.setdefault("OPTIONS", {})
    options["prepare_threshold"] = None
    options.pop("options", None)
    config["DISABLE_SERVER_SIDE_CURSORS"] = True
    return config


def databases(*, statement_timeout_default: int = 0) -> dict:
    """`default` from database_url(); with DATABASE_REPLICA_URL also `replica`, which
    storyhub.replica routes read-only requests to (README "Operations")."""
    result = {"default": database_config(database_url(), statement_timeout_default=statement_timeout_default)}
    replica_url = env("DATABASE_REPLICA_URL", default="")
    if replica_url:
        replica = database_config(replica_url, statement_timeout_default=statement_timeout_default)
        # A replica that is down must not hold a request for long: the primary answers instead.
        replica.setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2)
        replica["TEST"] = {"MIRROR": "default"}
        result["replica"] = replica
    return result


DATABASES = databases()
DATABASE_ROUTERS = ["storyhub.replica.ReplicaRouter"] if "replica" in DATABASES else []
# Read replica routing (storyhub.replica): a client that wrote reads from the primary for
# this long; a replica further behind than MAX_LAG seconds, or down, is checked again
# after CHECK_SECONDS and the primary answers meanwhile.
DATABASE_REPLICA_PIN_SECONDS = env.float("DATABASE_REPLICA_PIN_SECONDS", default=5.0)
DATABASE_REPLICA_MAX_LAG = env.float("DATABASE_REPLICA_MAX_LAG", default=2.0)
DATABASE_REPLICA_CHECK_SECONDS = env.float("DATABASE_REPLICA_CHECK_SECONDS", default=1.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions live in the `sessions` table as JSON (sessions_app), never pickled.
SESSION_ENGINE = "sessions_app.backends"
SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin login lockout (django-axes): AXES_FAILURE_LIMIT failed logins for one username from
# one address lock that pair out for AXES_COOLOFF_MINUTES (429, storyhub.admin_site's
# lockout page); a successful login resets the count; `manage.py axes_reset` unlocks all.
# Attempts live in the database (axes' tables), so every worker and container shares them.
# API keys never go through these backends, so the lockout does not affect them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before the password check
    # Django's ModelBackend, whose get_user takes the user read with the session row.
    "sessions_app.backends.SessionUserBackend",
    # Object permissions (`user.has_perm("stories.change_story", story)`) from stories.rules.
    "rules.permissions.ObjectPermissionBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "storyhub.admin_site.lockout_response"
# Successful logins are already listed with address and user agent in `sessions`.
AXES_DISABLE_ACCESS_LOG = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("DJANGO_LOG_JSON", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "audit.logging.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "audit.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # axes: lockouts and repeated failures are warnings; its per-attempt notes are noise.
        "axes": {"level": "WARNING"},
        # The MCP SDK notes every stateless request's session manager starting and stopping.
        "mcp": {"level": "WARNING"},
        # Django's own lines (its 4xx / 5xx request lines, the development server's access
        # lines) go to the console handler above, with the request id, instead of Django's
        # default handlers, which print them without it.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
    },
}

# Benchmark-only reference views under /bench/ (bench/urls.py); never enable in production.
STORYHUB_BENCH_VIEWS = env.bool("STORYHUB_BENCH_VIEWS", default=False)

# The MCP server (mcp_app): seconds one /mcp request may take before it is answered 504
# (kept under GUNICORN_TIMEOUT), and the OAuth authorization servers its protected-resource
# metadata names (none by default: clients send an API key as the bearer token).
MCP_REQUEST_TIMEOUT = env.int("MCP_REQUEST_TIMEOUT", default=55)
MCP_AUTHORIZATION_SERVERS = env.list("MCP_AUTHORIZATION_SERVERS", default=[])

# --- REST API (stories/api, audit/api, sessions_app/api) ---------------------------------
# The cache holds the API's rate-limit counters. The default lives in each process's memory,
# so every gunicorn worker counts on its own; CACHE_URL=dbcache://storyhub_cache shares
# the counters through the database (docker-entrypoint.sh runs createcachetable).
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sessions_app.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "stories.api.permissions.ReadOnlyKeyPermission",
    ],
    "DEFAULT_RENDERER_CLASSES": ["stories.api.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["stories.api.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["stories.api.throttling.KeyOrUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_THROTTLE_KEY", default="600/min"),
        "user": env("API_THROTTLE_USER", default="600/min"),
        "anon": env("API_THROTTLE_ANON", default="60/min"),
    },
    # The client address for per-address limits: 0 = REMOTE_ADDR; N = the Nth address from
    # the right of X-Forwarded-For, as N trusted proxies append it. (DRF's default reads the
    # whole header, which any client can vary to get a fresh bucket each request.)
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "stories.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "stories.api.schema.StoryHubAutoSchema",
    # `?format=` belongs to the graph endpoint (json / dot / mermaid), not renderer choice.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "StoryHub API",
    "DESCRIPTION": "Stories, dependencies, audit and sessions. Errors: {code, message, details}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Operations are tagged by the path part after /api/ ("v1"), as when the schema views
    # themselves (/api/schema/, /api/docs/) still counted towards the common prefix; generated
    # clients name their modules after the tag.
    "SCHEMA_PATH_PREFIX": r"/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVERS": [{"url": "/", "description": "this server"}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "stories.api.schema.postprocess_nullable_refs",
    ],
    # Read and write models share one enum component per set of choices.
    "ENUM_NAME_OVERRIDES": {
        "PriorityEnum": "stories.api.serializers.PRIORITY_WORDS",
        "ProjectStatusEnum": "stories.models.ProjectStatus",
        "BacklogTypeEnum": "stories.models.BacklogType",
        "BacklogStatusEnum": "stories.models.BacklogStatus",
        "StatusCategoryEnum": "stories.models.StatusCategory",
        "MemberRoleEnum": "stories.models.MemberRole",
        "DependencyTypeEnum": "stories.models.DependencyType",
        "ProjectDependencyTypeEnum": "stories.models.ProjectDependencyType",
        "DatabaseErrorCodeEnum": ["database_unavailable", "database_timeout", "database_busy"],
        "ImportOutcomeEnum": "stories.models.ImportOutcome",
        "ImportRunStateEnum": "stories.models.ImportRunState",
        "ImportConflictKindEnum": "stories.models.ConflictKind",
        "ImportConflictStateEnum": "stories.models.ConflictState",
        "ImportResolutionEnum": "stories.api.import_views.RESOLUTIONS",
    },
}


# Events and webhooks (README "Events"). Background jobs go through Django's tasks API
# (django-tasks) with the database backend: no broker.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "webhooks"]}}
WEBHOOK_SECRET_KEY = env("WEBHOOK_SECRET_KEY", default="")  # encrypts stored secrets; default SECRET_KEY
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
WEBHOOKS_RESPONSE_MAX_BYTES = env.int("WEBHOOKS_RESPONSE_MAX_BYTES", default=65536)
# Server-Sent Events: a stream ends after this long (the client resumes with
# Last-Event-ID), polls the outbox this often, and each process serves at most this many
# at once (more get 503 + Retry-After), so open streams cannot hold every thread.
EVENTS_SSE_MAX_SECONDS = env.float("EVENTS_SSE_MAX_SECONDS", default=55.0)
EVENTS_SSE_POLL_SECONDS = env.float("EVENTS_SSE_POLL_SECONDS", default=1.0)
EVENTS_SSE_MAX_STREAMS = env.int("EVENTS_SSE_MAX_STREAMS", default=1)
# /readyz reports the outbox lag from these probes (dotted paths, so the kernel imports no app).
READINESS_PROBES = {"outbox": "events.health.outbox_status"}

# Two-way git sync (stories.sync; README "Git sync"). Local repositories (a path instead of
# a URL) may be linked only under these directories; none by default, so on a server a
# project admin cannot point a project at the server's own files.
GIT_SYNC_LOCAL_ROOTS = env.list("GIT_SYNC_LOCAL_ROOTS", default=[])
# Where each linked repository's bare mirror is kept (only objects; safe to delete).
GIT_SYNC_CACHE_DIR = env("GIT_SYNC_CACHE_DIR", default=str(Path(tempfile.gettempdir()) / "storyhub-git-sync"))
# The identity of the commits StoryHub pushes.
GIT_SYNC_AUTHOR = env("GIT_SYNC_AUTHOR", default="StoryHub <storyhub@localhost>")
