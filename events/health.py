"""The outbox's state for /readyz (storyhub.health reads it through READINESS_PROBES):
how many events wait to be sequenced or published, how many deliveries are due, and the
age of the oldest of them (`lag_seconds`; it grows when no worker runs). Reported, not
judged: a lagging worker does not make the web process unready."""

from __future__ import annotations

from .outbox import outbox_lag


def outbox_status() -> dict:
    return outbox_lag()
