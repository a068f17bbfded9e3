"""WSGI entry point (gunicorn storyhub.wsgi)."""

import os

from storyhub import startup

startup.pause()  # until the apps are loaded (storyhub.apps); see storyhub/startup.py

from django.core.wsgi import get_wsgi_application  # noqa: E402

from audit.logging import with_request_id_logging  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyhub.settings.production")

application = with_request_id_logging(get_wsgi_application())
startup.resume()  # already done by the apps' ready(), unless they were loaded before this module

# Load the URLconf (and with it every view module) now, not in a worker's first request:
# that request took ~1 s, and a reload's new workers paying it at once stalled the others.
# With gunicorn's preload_app (gunicorn.conf.py) this happens once, in the master.
if os.environ.get("STORYHUB_WARM_URLS", "true").lower() != "false":
    from django.urls import get_resolver

    with startup.paused():  # and frozen before gunicorn forks the workers
        get_resolver().url_patterns  # noqa: B018 - evaluated for its imports
