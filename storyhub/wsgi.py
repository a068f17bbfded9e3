"""WSGI entry point (gunicorn storyhub.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from audit.logging import with_request_id_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyhub.settings.production")

application = with_request_id_logging(get_wsgi_application())

# Load the URLconf (and with it every view module) now, not in a worker's first request:
# that request took ~1 s, and a reload's new workers paying it at once stalled the others.
# With gunicorn's preload_app (gunicorn.conf.py) this happens once, in the master.
if os.environ.get("STORYHUB_WARM_URLS", "true").lower() != "false":
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - evaluated for its imports
