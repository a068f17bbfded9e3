"""Django's own log lines carry the request id too: its 4xx / 5xx lines (`django.request`,
written after the middleware has returned) and the development server's access lines
(`django.server`), both through the console handler that settings.LOGGING configures."""

from __future__ import annotations

import io
import logging
import threading
from contextlib import contextmanager

import pytest
import requests


@contextmanager
def console_output():
    """What the configured console handler writes, while the block runs."""
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    buffer = io.StringIO()
    previous = console.setStream(buffer)
    try:
        yield buffer
    finally:
        console.setStream(previous)


def test_django_request_lines_carry_the_request_id(client, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    with console_output() as output:
        response = client.get("/api/v1/projects/", HTTP_X_REQUEST_ID="trace-401-a")
    assert response.status_code == 401
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.request_id == "trace-401-a"
    lines = [line for line in output.getvalue().splitlines() if "django.request" in line]
    assert len(lines) == 1 and "[trace-401-a]" in lines[0], output.getvalue()


@pytest.mark.django_db(transaction=True)
def test_development_server_access_lines_carry_the_request_id():
    """runserver's line for a response comes after Django returned it, from the server
    thread: storyhub.wsgi's wrapper keeps the response's id for it."""
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    from storyhub.wsgi import application

    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler, ipv6=False)
    server.set_app(application)
    serving = threading.Thread(target=server.handle_request, daemon=True)
    serving.start()
    try:
        with console_output() as output:
            response = requests.get(
                f"http://127.0.0.1:{server.server_port}/api/v1/no-such-thing/",
                headers={"X-Request-ID": "trace-404-b", "Connection": "close"},
                timeout=10,
            )
            serving.join(10)
    finally:
        server.server_close()
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-404-b"
    lines = [line for line in output.getvalue().splitlines() if "django.server" in line]
    assert len(lines) == 1 and "[trace-404-b]" in lines[0], output.getvalue()
