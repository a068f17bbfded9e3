"""manage.py create_api_key --user U --name N [--read-only] [--expires-days D]"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.context import write_context
from sessions_app.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--name", required=True)
        parser.add_argument("--read-only", action="store_true")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        try:
            with write_context(source="cli"):
                key, plaintext = api_key_create(
                    actor=None,
                    user=user,
                    name=options["name"],
                    read_only=options["read_only"],
                    expires_days=options["expires_days"],
                )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stderr.write(f"API key {key.prefix}… ({'read-only' if key.read_only else 'read-write'}) for {user}:")
        self.stdout.write(plaintext)
