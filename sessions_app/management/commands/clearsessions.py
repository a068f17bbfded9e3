"""`manage.py clearsessions`: remove expired rows from the `sessions` table.

Django ships this command in django.contrib.sessions, which StoryHub replaces with
sessions_app (JSON sessions in the `sessions` table), so it lives here."""

from importlib import import_module

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Delete expired sessions from the sessions table."

    def handle(self, **options):
        engine = import_module(settings.SESSION_ENGINE)
        try:
            engine.SessionStore.clear_expired()
        except NotImplementedError:
            raise CommandError(f"Session engine '{settings.SESSION_ENGINE}' cannot clear expired sessions.")
        if options["verbosity"] > 1:
            self.stdout.write("Expired sessions cleared.")
