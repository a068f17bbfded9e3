"""`Authorization: Bearer <key>` authentication. A valid key also sets the write
context's api_key_id, so audit rows of writes made with it carry the key's id."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from audit.context import update_context
from sessions_app.services import api_key_lookup, api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()  # str.split() also splits on U+0085 and U+00A0
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the header as 'Authorization: Bearer <key>'.")
        key = api_key_lookup(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The key's user is inactive.")
        api_key_touch(key=key)
        # The middleware resets the context at the end of the request.
        update_context(api_key_id=key.pk)
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword
