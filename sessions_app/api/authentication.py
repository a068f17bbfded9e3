"""`Authorization: Bearer <key>` authentication. A valid key also sets the write
context's api_key_id, so audit rows of writes made with it carry the key's id."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from audit.context import update_context
from sessions_app.services import ApiKeyRejected, api_key_authenticate


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
        try:
            key = api_key_authenticate(parts[1])
        except ApiKeyRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        # The middleware resets the context at the end of the request.
        update_context(api_key_id=key.pk)
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword
