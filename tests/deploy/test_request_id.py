"""Every request has an id (X-Request-ID or a new one): echoed in the response, on every log
record (JSON lines with DJANGO_LOG_JSON=true) and in the audit rows of writes it makes."""

from __future__ import annotations

import datetime
import io
import json
import logging
import re
import subprocess
import sys

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from audit.context import write_context
from audit.logging import ACCESS_LOG_FORMAT, GunicornLogger, JsonFormatter, RequestIdFilter
from audit.middleware import RequestContextMiddleware
from audit.models import AuditLog
from stories import services
from stories.models import Project
from tests.deploy.helpers import ROOT, clean_env


def test_incoming_request_id_is_echoed_and_a_bad_one_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="trace-abc.123:x")
    assert response["X-Request-ID"] == "trace-abc.123:x"
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_request_id_reaches_the_audit_rows_and_the_logs(owner):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("storyhub.tests.request_id")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def view(request):
        project = services.project_create(actor=owner, slug="rid-proj", name="Request id")
        logger.info("created %s", project.slug)
        return HttpResponse("ok")

    try:
        request = RequestFactory().post("/api/v1/projects/", HTTP_X_REQUEST_ID="req-from-proxy-7")
        response = RequestContextMiddleware(view)(request)
    finally:
        logger.removeHandler(handler)
    assert response["X-Request-ID"] == "req-from-proxy-7"
    rows = AuditLog.objects.filter(action="project.created", entity_id=str(Project.objects.get(slug="rid-proj").pk))
    assert [row.details["request_id"] for row in rows] == ["req-from-proxy-7"]
    assert rows[0].details["source"] == "api"
    line = json.loads(stream.getvalue().strip())
    assert line["request_id"] == "req-from-proxy-7" and line["message"] == "created rid-proj"


def test_json_formatter_outside_a_request_and_with_structured_fields():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"
    with write_context(request_id="r-1"):
        inner = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
        RequestIdFilter().filter(inner)
    inner.data = {"status": 201}
    payload = json.loads(JsonFormatter().format(inner))
    assert payload["request_id"] == "r-1" and payload["status"] == 201 and payload["level"] == "INFO"


def test_django_log_json_setting_switches_the_console_formatter():
    code = (
        "import django, logging; django.setup()\n"
        "from audit.context import write_context\n"
        "with write_context(request_id='rid-json-1'):\n"
        "    logging.getLogger('storyhub.probe').warning('probe %d', 5)\n"
    )
    for json_logs in ("true", "false"):
        env = clean_env(DJANGO_SETTINGS_MODULE="storyhub.settings.local", DJANGO_LOG_JSON=json_logs)
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        if json_logs == "true":
            payload = json.loads(line)
            assert payload["request_id"] == "rid-json-1" and payload["message"] == "probe 5"
            assert payload["level"] == "WARNING" and payload["logger"] == "storyhub.probe"
        else:
            assert "[rid-json-1]" in line and "probe 5" in line


def test_gunicorn_plain_access_line_carries_the_request_id():
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", ACCESS_LOG_FORMAT)
    glog = GunicornLogger(cfg)
    stream = io.StringIO()
    for h in glog.access_log.handlers:
        h.setStream(stream)

    class Resp:
        status = "200 OK"
        sent = 12
        headers = [("Content-Type", "text/plain"), ("X-Request-ID", "gid-77")]

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/readyz",
        "PATH_INFO": "/readyz",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    glog.access(Resp(), [], environ, datetime.timedelta(milliseconds=5))
    assert 'GET /readyz HTTP/1.1" 200 12' in stream.getvalue()
    assert "request_id=gid-77" in stream.getvalue()
