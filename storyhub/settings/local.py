"""Local development: `make run` (SQLite by default, DEBUG on)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
