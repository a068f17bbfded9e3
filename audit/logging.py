"""Logging helpers: the current request id on every record, optional JSON lines, and a
gunicorn logger whose access lines carry the request id too."""

import contextvars
import json
import logging
import os
from datetime import UTC, datetime

from .context import current

# Access lines in plain mode: gunicorn's "combined" format plus duration and request id
# (the response header our middleware sets, so generated ids are logged as well).
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms request_id=%({x-request-id}o)s'


def json_logs_enabled() -> bool:
    return os.environ.get("DJANGO_LOG_JSON", "").strip().lower() in ("1", "true", "yes", "on")


# The X-Request-ID of the response this thread is serving, for the lines written after
# Django has returned it (the development server's access lines); set per request by
# `with_request_id_logging`.
_response_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "storyhub_response_request_id", default=None
)


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record: the request being served (the write context),
    else the request a record is about (Django's `django.request` 4xx / 5xx lines are
    written after the middleware returned), else the response being sent (`django.server`
    lines), else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            about = getattr(getattr(record, "request", None), "request_id", None)
            record.request_id = (
                current().request_id or (about if isinstance(about, str) else None) or _response_request_id.get() or "-"
            )
        return True


def with_request_id_logging(application):
    """Wrap a WSGI application so that log lines written after it answered (the server's
    access line) still find the request id of the response (its X-Request-ID header)."""

    def wrapped(environ, start_response):
        _response_request_id.set(None)

        def capture(status, headers, exc_info=None):
            found = next((value for name, value in headers if name.lower() == "x-request-id"), None)
            _response_request_id.set(found)
            return start_response(status, headers, exc_info)

        return application(environ, capture)

    return wrapped


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={"data": {...}}` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            payload.update(data)
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is a runtime dependency, but keep this module importable without it
    _GunicornLogger = None


if _GunicornLogger is not None:

    class GunicornLogger(_GunicornLogger):
        """gunicorn's logger; with DJANGO_LOG_JSON=true its error and access logs are JSON
        lines like the application's, each access line with the request id."""

        def setup(self, cfg):
            super().setup(cfg)
            self.json = json_logs_enabled()
            if self.json:
                for handler in self.error_log.handlers + self.access_log.handlers:
                    handler.setFormatter(JsonFormatter())

        def access(self, resp, req, environ, request_time):
            if not self.json:
                return super().access(resp, req, environ, request_time)
            if not self.access_log_enabled:
                return
            atoms = self.atoms(resp, req, environ, request_time)
            request_id = atoms.get("{x-request-id}o") or atoms.get("{x-request-id}i") or "-"
            data = {
                "remote_addr": atoms["h"],
                "method": atoms["m"],
                "path": atoms["U"],
                "query": atoms["q"] or "",
                "protocol": atoms["H"],
                "status": int(str(atoms["s"])) if str(atoms["s"]).isdigit() else atoms["s"],
                "bytes": atoms["B"],
                "duration_ms": atoms["M"],
                "referer": atoms["f"],
                "user_agent": atoms["a"],
            }
            self.access_log.info("%s", atoms["r"], extra={"data": data, "request_id": request_id})
