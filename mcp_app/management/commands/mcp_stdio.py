"""`manage.py mcp_stdio --key shk_…`: the MCP server over stdio, for assistants that start
it as a local process. The key is checked like a bearer key (sessions_app), the calls
act as its user with its scope (a read-only key gets the read tools only), and writes
are audited with source "mcp" and the key's id, exactly as over HTTP. stdout carries the
protocol only; logs go to stderr."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from sessions_app.services import ApiKeyRejected, api_key_authenticate


class Command(BaseCommand):
    help = "Serve StoryHub's MCP tools over stdio, acting as the owner of an API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--key",
            default=os.environ.get("STORYHUB_API_KEY", ""),
            help="the API key (default: the STORYHUB_API_KEY environment variable)",
        )

    def handle(self, *args, **options):
        if not options["key"]:
            raise CommandError("Give an API key: --key shk_… (or set STORYHUB_API_KEY).")
        try:
            key = api_key_authenticate(options["key"])
        except ApiKeyRejected as exc:
            raise CommandError(str(exc)) from None
        from mcp_app.stdio import serve

        self.stderr.write(f"StoryHub MCP server on stdio as {key.user.username} ({key.prefix}…)")
        serve(key)
        sys.stdout.flush()
