"""WSGI entry point (gunicorn storyhub.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from audit.logging import with_request_id_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyhub.settings.production")

application = with_request_id_logging(get_wsgi_application())
