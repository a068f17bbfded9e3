"""Rate limits per API key (requests made with a key) and per user (session
requests), plus per address for anonymous callers and for failed authentication. Rates
come from settings (API_THROTTLE_KEY / API_THROTTLE_USER / API_THROTTLE_ANON env vars)."""

from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle


class KeyOrUserRateThrottle(SimpleRateThrottle):
    """One bucket per API key when a key is used, else one per user."""

    def get_rate(self):
        return None  # chosen per request in allow_request

    def allow_request(self, request, view):
        from django.conf import settings

        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        key = getattr(request, "auth", None)
        if getattr(key, "key_hash", None):
            self.scope, ident = "api_key", f"key-{key.pk}"
        elif request.user and request.user.is_authenticated:
            self.scope, ident = "user", f"user-{request.user.pk}"
        else:
            self.scope, ident = "anon", f"anon-{self.get_ident(request)}"
        self.rate = rates.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.cache_format % {"scope": self.scope, "ident": ident}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def get_cache_key(self, request, view):  # pragma: no cover - allow_request builds it
        return None


def throttle_failed_authentication(request, view) -> Throttled | None:
    """DRF authenticates before it throttles, so missing or bad credentials were answered
    401 without ever being counted: a client could guess keys at full speed. The exception
    handler calls this for each 401; the request counts in its address's "anon" bucket
    (the one anonymous requests use), and once that is full the answer is 429 instead.
    Requests that authenticate are never slowed down by another client's failures."""
    if request is None:
        return None
    throttle = KeyOrUserRateThrottle()
    if throttle.allow_request(request, view):
        return None
    return Throttled(wait=throttle.wait())
