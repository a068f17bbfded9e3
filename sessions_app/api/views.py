"""GET /api/v1/sessions/ lists the caller's own sessions; DELETE revokes one
(sessions_app.services.session_revoke). Another user's session answers 404."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app.models import Session
from sessions_app.services import session_revoke


class SessionOut(serializers.Serializer):
    id = serializers.CharField(help_text="the first 8 characters of the session id")
    ip_address = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_activity = serializers.DateTimeField()
    expire = serializers.DateTimeField()
    current = serializers.BooleanField()


def _payload(session: Session, current_key: str | None) -> dict:
    return {
        "id": session.sid[:8],
        "ip_address": session.ip_address,
        "user_agent": session.user_agent,
        "created_at": session.created_at,
        "last_activity": session.last_activity,
        "expire": session.expire,
        "current": session.sid == current_key,
    }


def _current_key(request) -> str | None:
    session = getattr(request, "session", None)
    return getattr(session, "session_key", None)


class SessionListView(APIView):
    @extend_schema(responses=SessionOut(many=True))
    def get(self, request):
        sessions = Session.objects.active().filter(user=request.user).order_by("-last_activity")
        current = _current_key(request)
        return Response([_payload(s, current) for s in sessions])


class SessionDetailView(APIView):
    """Sessions are named by their id's first 8 characters; the full id is a secret."""

    def _get(self, request, sid_prefix: str) -> Session:
        if len(sid_prefix) != 8:
            raise Http404
        matches = list(Session.objects.filter(user=request.user, sid__startswith=sid_prefix)[:2])
        if len(matches) != 1:
            raise Http404
        return matches[0]

    @extend_schema(responses=SessionOut)
    def get(self, request, sid_prefix):
        return Response(_payload(self._get(request, sid_prefix), _current_key(request)))

    @extend_schema(responses={204: None})
    def delete(self, request, sid_prefix):
        session_revoke(actor=request.user, session=self._get(request, sid_prefix))
        return Response(status=http.HTTP_204_NO_CONTENT)
