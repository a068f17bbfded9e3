"""Production: gunicorn behind a TLS-terminating proxy, PostgreSQL, whitenoise for static files.

Refuses to start without DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS. With a proper
environment `manage.py check --deploy` reports no issues; every security switch below can
be turned down through the environment (documented in .env.example), never silently.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, databases, env

for _required in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
    if not env(_required, default=""):
        raise ImproperlyConfigured(f"{_required} must be set for production settings.")

DEBUG = False

# No statement may hold a worker (and its locks) for ever: unless DB_STATEMENT_TIMEOUT says
# otherwise (0 = no limit), PostgreSQL cancels a statement after 30 s (503 database_timeout).
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
DATABASES = databases(statement_timeout_default=DEFAULT_STATEMENT_TIMEOUT_MS)
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS. The proxy terminates TLS; gunicorn turns its X-Forwarded-Proto into the request
# scheme only when the proxy's address is in GUNICORN_FORWARDED_ALLOW_IPS, so Django does
# not need to trust the raw header itself. DJANGO_SECURE_PROXY_SSL_HEADER=true makes Django
# trust it directly (only for servers other than our gunicorn config, and only behind a
# proxy that always overwrites the header).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health endpoints answer plain HTTP so container and load-balancer probes work.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env("DJANGO_SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Static files: collected at image build time, served by whitenoise (compressed, hashed
# names with far-future cache headers).
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
