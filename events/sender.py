"""One HTTP POST of a webhook: to the address netguard checked (Host header and TLS
name stay the URL's), with a connect / read timeout and an overall deadline, reading at
most WEBHOOKS_RESPONSE_MAX_BYTES of the answer. Redirects are not followed (a 3xx is a
failed attempt): a redirect could lead anywhere, the check included."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from django.conf import settings

from .netguard import Target, TargetRefused, resolve_target

EXCERPT_CHARS = 1024
USER_AGENT = "StoryHub-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address
        self._tls = ssl.create_default_context()

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _read_capped(response: http.client.HTTPResponse, limit: int, deadline: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took longer than the delivery timeout")
        chunk = response.read1(min(8192, limit - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), True


def post(url: str, *, body: str, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url`; never raises for network trouble (it is the Outcome's error)."""
    timeout = float(settings.WEBHOOKS_TIMEOUT_SECONDS)
    limit = int(settings.WEBHOOKS_RESPONSE_MAX_BYTES)
    started = time.monotonic()
    deadline = started + 2 * timeout

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = resolve_target(url)
    except TargetRefused as exc:
        return Outcome(False, None, took(), f"refused: {exc}")
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, timeout)
    try:
        connection.request(
            "POST",
            target.path,
            body=body.encode(),
            headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        response = connection.getresponse()
        raw, truncated = _read_capped(response, limit, deadline)
    except (OSError, http.client.HTTPException) as exc:  # timeouts, refused connections, TLS, bad answers
        return Outcome(False, None, took(), f"{type(exc).__name__}: {exc}".strip())
    finally:
        connection.close()
    excerpt = raw[:EXCERPT_CHARS].decode("utf-8", "replace") + (" …(truncated)" if truncated else "")
    ok = 200 <= response.status < 300
    return Outcome(ok, response.status, took(), "" if ok else f"HTTP {response.status}", excerpt)
