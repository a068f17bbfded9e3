"""Django session engine on the `sessions` table (SESSION_ENGINE = "sessions_app.backends").

The session dict is stored as JSON in `sess` (never pickled), so it can be queried; the
user id, client IP and user agent are copied into columns on save.
"""

from __future__ import annotations

import logging

from django.contrib.auth import HASH_SESSION_KEY  # noqa: F401  (documented key of the dict)
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, IntegrityError, router, transaction
from django.utils import timezone

logger = logging.getLogger("storyhub.sessions")


class SessionStore(SessionBase):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self.client_ip: str | None = None
        self.user_agent: str = ""

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    @property
    def model(self):
        return self.get_model_class()

    def _get_session_from_db(self):
        try:
            return self.model.objects.get(sid=self.session_key, expire__gt=timezone.now())
        except (self.model.DoesNotExist, SuspiciousOperation) as exc:
            if isinstance(exc, SuspiciousOperation):
                logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
            self._session_key = None
            return None

    def load(self):
        row = self._get_session_from_db()
        return dict(row.sess) if row else {}

    def exists(self, session_key):
        return self.model.objects.filter(sid=session_key).exists()

    def create(self):
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def _user_id(self, data: dict):
        raw = data.get("_auth_user_id")
        if raw is None:
            return None
        try:
            return int(raw)
        except (TypeError, ValueError):
            return None

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        now = timezone.now()
        values = {
            "sess": data,
            "expire": self.get_expiry_date(),
            "user_id": self._user_id(data),
            "last_activity": now,
        }
        if self.client_ip is not None:
            values["ip_address"] = self.client_ip
        if self.user_agent:
            values["user_agent"] = self.user_agent[:512]
        using = router.db_for_write(self.model)
        try:
            with transaction.atomic(using=using):
                if must_create:
                    self.model.objects.create(sid=self._get_or_create_session_key(), created_at=now, **values)
                else:
                    updated = self.model.objects.filter(sid=self.session_key).update(**values)
                    if not updated:
                        # The row was revoked or expired meanwhile: start afresh rather than resurrect it.
                        raise UpdateError
        except IntegrityError:
            if must_create:
                raise CreateError
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError
            raise

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(sid=session_key).delete()

    @classmethod
    def clear_expired(cls):
        cls.get_model_class().objects.filter(expire__lt=timezone.now()).delete()
