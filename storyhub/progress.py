"""A one-line progress bar for long management commands (import_stories, export_stories)."""

from __future__ import annotations

import time


class ProgressBar:
    """A one-line progress bar on a terminal (stderr); nothing when it is not a TTY."""

    def __init__(self, stream, width: int = 30):
        self.stream = stream
        self.width = width
        self.enabled = hasattr(stream, "isatty") and stream.isatty()
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        filled = int(self.width * done / total)
        label = {"read": "reading", "write": "writing"}.get(stage, stage)
        self.stream.write(f"\r{label:8} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
