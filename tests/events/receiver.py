"""A real webhook receiver on 127.0.0.1 for the tests: verifies every request's
Standard Webhooks signature with the `standardwebhooks` library and answers as told
(`mode`: "ok", "500", "hang" — no answer until the sender gives up, "big" — a large body)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    message_id: str
    verified: bool
    body: dict
    headers: dict


@dataclass
class Receiver:
    secret: str = ""
    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"

    def verified_ids(self) -> list[str]:
        return [r.message_id for r in self.received if r.verified]


def start() -> Receiver:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(receiver.secret).verify(raw, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            receiver.received.append(Received(headers.get("webhook-id", ""), verified, json.loads(raw), headers))
            if receiver.mode == "hang":
                receiver.release.wait(5)
                return
            status = 500 if receiver.mode == "500" else 200
            payload = b"x" * 300_000 if receiver.mode == "big" else b'{"received": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except OSError:
                pass  # the sender stopped reading at its cap

        def log_message(self, *args):
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def stop(receiver: Receiver) -> None:
    receiver.release.set()
    if receiver.server is not None:
        receiver.server.shutdown()
        receiver.server.server_close()
