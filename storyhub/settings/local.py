"""Local development: `make run` (SQLite by default, DEBUG on)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Webhook receivers on this machine (http://127.0.0.1:…) are fine while developing.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=True)

# A laptop: any local repository may be linked.
GIT_SYNC_LOCAL_ROOTS = env.list("GIT_SYNC_LOCAL_ROOTS", default=["/"])
