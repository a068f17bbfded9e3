"""Django's SessionMiddleware, plus the client's IP and user agent handed to the store;
Django's AuthenticationMiddleware, with the user read in the session's own statement."""

from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.utils.functional import SimpleLazyObject

from .backends import lend_session_user


class SessionMiddleware(DjangoSessionMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.session.client_ip = request.META.get("REMOTE_ADDR") or None
        request.session.user_agent = request.headers.get("User-Agent", "")


def get_user(request):
    """auth's `get_user`, lending it the user that was read with the session row (the
    middleware's lazy `request.user` calls it once per request)."""
    with lend_session_user(request.session):
        return auth.get_user(request)


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)  # checks the session middleware, sets `auser`
        request.user = SimpleLazyObject(lambda: get_user(request))
