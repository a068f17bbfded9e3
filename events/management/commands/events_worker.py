"""`manage.py events_worker`: the background worker of the events app (README "Events").
No broker: it polls the database. Stop it with SIGTERM / Ctrl-C; it finishes the round
it is in (a worker killed harder loses nothing: its leases expire and another round
retries them)."""

from __future__ import annotations

import os
import signal
import socket
import time

from django.core.management.base import BaseCommand

from events.worker import run_queued_jobs, tick


class Command(BaseCommand):
    help = "Publish the outbox to webhooks (sequence, fan out, deliver, retry) and run queued webhook jobs."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5, help="seconds to wait when idle (default 0.5)")
        parser.add_argument("--threads", type=int, default=4, help="attempts sent in parallel (default 4)")
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *, interval: float, threads: int, once: bool, verbosity: int, **options):
        worker_id = f"{socket.gethostname()}:{os.getpid()}"[:64]
        self.running = True

        def stop(signum, frame):
            self.running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if verbosity:
            self.stdout.write(f"events worker {worker_id} started (interval {interval}s, {threads} threads)")
        while self.running:
            done = tick(worker_id=worker_id, threads=threads)
            run_queued_jobs(worker_id=worker_id)
            if verbosity > 1 or (verbosity and done["attempts"]):
                self.stdout.write(" ".join(f"{k}={v}" for k, v in done.items()))
            if once:
                break
            if not any(done.values()):
                time.sleep(interval)
        if verbosity:
            self.stdout.write(f"events worker {worker_id} stopped")
