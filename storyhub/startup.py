"""The cyclic garbage collector during start-up (README "Start-up").

Start-up (settings, the apps' models and admin modules, the URLconf) allocates ~110,000
objects that live as long as the process. The collector walked them again and again while
they were being created, ~280 passes for one `manage.py check` (~0.1 s CPU, measured with
gc.callbacks), and again during interpreter shutdown (~0.15 s), about a third of the
command's 0.85 s, finding nothing to free.

So the entry points (manage.py, storyhub/wsgi.py) call `pause()` before importing Django,
and `resume()` runs once start-up is done: it moves everything allocated so far into the
collector's permanent generation (`gc.freeze()`: never walked again, not at shutdown
either) and turns the collector back on for whatever the command or request allocates.
That is also the recipe of the `gc.freeze()` documentation for a server that forks
workers: collections in a worker no longer write to the pages of the objects it shares
with the master. Processes that did not call `pause()` (the tests, a plain
`django.setup()`) are left as they are.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False


def pause() -> None:
    """Turn the cyclic collector off until `resume()` (an entry point's first line)."""
    global _paused  # noqa: PLW0603 - one flag per process
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze what start-up allocated and turn the collector back on, if `pause()` turned
    it off; otherwise do nothing. Safe to call more than once."""
    global _paused  # noqa: PLW0603 - one flag per process
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


@contextmanager
def paused() -> Iterator[None]:
    """Run a later part of start-up (the URLconf that storyhub/wsgi.py loads) with the
    collector paused, and freeze what it allocated too."""
    pause()
    try:
        yield
    finally:
        resume()
