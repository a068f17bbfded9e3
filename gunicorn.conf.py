"""gunicorn configuration for StoryHub (`gunicorn storyhub.wsgi -c gunicorn.conf.py`).

Everything comes from the environment (see .env.example); the defaults suit a container
with a few CPUs behind a TLS-terminating reverse proxy."""

import multiprocessing
import os

from audit.logging import ACCESS_LOG_FORMAT, GunicornLogger


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]  # noqa: S104 (a container listens on all interfaces)
# Sync workers with a few threads each: (2 x CPUs) + 1 processes is gunicorn's rule of thumb,
# capped so a large host does not open more database connections than PostgreSQL allows.
workers = _int("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8))
threads = _int("GUNICORN_THREADS", 2)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 60)
# SIGTERM: stop accepting, let in-flight requests finish for this long, then exit 0.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Fair spread (README "Deployment", bench/parts/workers.py). A gthread worker accepts every
# connection it can and keeps it alive, so keep-alive clients pile onto whichever worker
# accepted first (measured 24/7/6/3 of 40 clients, 38/1/1/0 after a reload). Two limits
# undo that: a worker holds at most this many connections (it stops accepting and closes
# kept-alive ones beyond it; open event streams count), and a connection is closed after
# GUNICORN_KEEPALIVE_REQUESTS requests, so clients reconnect, to the workers that are free.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", max(threads * 4, 8))
# The app is imported once in the master and forked: a reload (SIGHUP) or a recycled worker
# (max_requests) serves at once, where each new worker importing Django and the app left
# nobody accepting for the whole import (a 7 s stall under load, measured). The price: HUP
# re-reads this configuration but not the code; deploy code by a new container (or USR2).
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() != "false"
keepalive_requests = _int("GUNICORN_KEEPALIVE_REQUESTS", 100)


def pre_request(worker, req):
    """Close the connection after this response once it has served keepalive_requests."""
    if keepalive_requests and req.req_number >= keepalive_requests:
        req.must_close = True


# Recycle workers now and then so a slow leak can never take the service down.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# X-Forwarded-Proto / -For are honoured only from these proxy addresses (comma-separated,
# "*" = any; only safe when nothing but the proxy can reach the container).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Logs: access and errors to stdout/stderr for the container runtime; the access lines carry
# the request id, and with DJANGO_LOG_JSON=true both are JSON lines.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = ACCESS_LOG_FORMAT
logger_class = GunicornLogger
# The container's filesystem may be read-only except /tmp; keep heartbeats in memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# gunicorn's control socket (`gunicornc`) defaults to one path per user, which two
# instances on one host would share; only enable it at an explicit path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
if control_socket_disable:
    del control_socket
