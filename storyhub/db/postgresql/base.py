"""Django's PostgreSQL backend with psycopg's C timestamptz loader.

Django 5.2 reads every `timestamptz` through a Python subclass of psycopg's pure-Python
loader (Django ticket #36960), a measurable share of a 100-row story list. StoryHub's
connections run in UTC (USE_TZ, TIME_ZONE UTC), where psycopg's own C loader returns the
same aware datetimes, so it is registered instead. In any other configuration this
backend behaves exactly like Django's.
"""

from __future__ import annotations

import datetime
from functools import lru_cache

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import adapt
from psycopg.types.datetime import TimestamptzLoader


@lru_cache
def _fast_context(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    ctx = adapt.AdaptersMap(template)
    # Registering psycopg's Python class picks its C implementation when available.
    ctx.register_loader("timestamptz", TimestamptzLoader)
    return ctx


class DatabaseWrapper(base.DatabaseWrapper):
    def _fast_timestamptz(self) -> bool:
        return settings.USE_TZ and self.timezone == datetime.UTC

    def get_connection_params(self):
        params = super().get_connection_params()
        if "context" in params and self._fast_timestamptz():
            params["context"] = _fast_context(params["context"])
        return params

    @base.async_unsafe
    def create_cursor(self, name=None):
        if not self._fast_timestamptz():
            return super().create_cursor(name)
        # Django's version compares the connection's loader with self.timezone to decide
        # whether to register its own on the cursor; ours is already right for UTC.
        if not name:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)
