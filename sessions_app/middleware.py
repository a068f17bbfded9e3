"""Django's SessionMiddleware, plus the client's IP and user agent handed to the store."""

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware


class SessionMiddleware(DjangoSessionMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.session.client_ip = request.META.get("REMOTE_ADDR") or None
        request.session.user_agent = request.headers.get("User-Agent", "")
