"""Django session engine on the `sessions` table (SESSION_ENGINE = "sessions_app.backends").

The session dict is stored as JSON in `sess` (never pickled), so it can be queried; the
user id, client IP and user agent are copied into columns on save.

Creating a session retries only when the new key collides with an existing row, at most
CREATE_ATTEMPTS times; any other database error surfaces. A `_auth_user_id` naming no
user is stored as "no user" (Django's auth treats such a session as anonymous anyway), and
data that is not strict JSON (NaN, infinity) is refused with a ValueError before it
reaches the database.

The session row is read with its user in one statement (a join on the `user` column);
`SessionUserBackend`, Django's ModelBackend in AUTHENTICATION_BACKENDS, hands that user to
auth's `get_user` instead of reading the row a second time, but only for the request's own
session while `lend_session_user` lends it (sessions_app.middleware.AuthenticationMiddleware
does), only for the user id the session names and only while the session is unchanged
since it was read. Everything else of `get_user` is Django's: the backend path must be in
AUTHENTICATION_BACKENDS, an inactive user is refused (`user_can_authenticate`), the session
hash is verified against the password (a password change logs other sessions out; a
fallback secret cycles the key), an expired or revoked session reads as no row at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging

from django.contrib.auth import HASH_SESSION_KEY  # noqa: F401  (documented key of the dict)
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import DatabaseError, IntegrityError, router, transaction
from django.utils import timezone

logger = logging.getLogger("storyhub.sessions")

# Session keys are 32 random characters: a collision is astronomically rare, so a few
# attempts are plenty; more would only hide a bug.
CREATE_ATTEMPTS = 5

# The session store whose user `SessionUserBackend.get_user` may take (set only around
# auth's get_user by `lend_session_user`).
_lent_store: contextvars.ContextVar[SessionStore | None] = contextvars.ContextVar("storyhub_session_user", default=None)


class SessionStore(SessionBase):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self.client_ip: str | None = None
        self.user_agent: str = ""
        # The user id the stored row already has (checked once, not on every save).
        self._stored_user_id: int | None = None
        # The user row read in the same statement as the session row (None: no user).
        self._loaded_user = None

    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    @property
    def model(self):
        return self.get_model_class()

    def _get_session_from_db(self):
        try:
            return self.model.objects.select_related("user").get(sid=self.session_key, expire__gt=timezone.now())
        except (self.model.DoesNotExist, SuspiciousOperation) as exc:
            if isinstance(exc, SuspiciousOperation):
                logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
            self._session_key = None
            return None

    def load(self):
        row = self._get_session_from_db()
        self._stored_user_id = row.user_id if row else None
        self._loaded_user = row.user if row else None
        return dict(row.sess) if row else {}

    def user_read_with_session(self, user_id):
        """The user row read with this session, if it is user `user_id` and the session is
        unchanged since (a login or logout in this request reads the user afresh)."""
        user = self._loaded_user
        if user is None or self.modified:
            return None
        try:
            pk = type(user)._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        return user if user.pk == pk else None

    def exists(self, session_key):
        return self.model.objects.filter(sid=session_key).exists()

    def create(self):
        for _attempt in range(CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue  # the key is taken (save checked): draw another
            self.modified = True
            return
        raise CreateError(f"No unused session key after {CREATE_ATTEMPTS} attempts.")

    def _user_id(self, data: dict):
        raw = data.get("_auth_user_id")
        if raw is None:
            return None
        try:
            user_id = int(raw)
        except (TypeError, ValueError):
            return None
        if user_id == self._stored_user_id:
            return user_id
        # The column is a foreign key: an id naming no user would fail the insert (at
        # commit on PostgreSQL, where the constraint is deferred).
        from django.contrib.auth import get_user_model

        return user_id if get_user_model().objects.filter(pk=user_id).exists() else None

    @staticmethod
    def _check_json(data: dict) -> None:
        try:
            json.dumps(data, allow_nan=False)
        except ValueError as exc:
            raise ValueError(f"Session data must be strict JSON (no NaN or infinity): {exc}") from None

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        self._check_json(data)
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
            # Only a taken key may be retried (by create); anything else is a real error.
            if must_create and self.exists(self.session_key):
                raise CreateError
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError
            raise
        self._stored_user_id = values["user_id"]

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
            self._loaded_user = None
        self.model.objects.filter(sid=session_key).delete()

    @classmethod
    def clear_expired(cls):
        cls.get_model_class().objects.filter(expire__lt=timezone.now()).delete()


@contextlib.contextmanager
def lend_session_user(session):
    """Within the block, `SessionUserBackend` may take the user read with `session`."""
    token = _lent_store.set(session if isinstance(session, SessionStore) else None)
    try:
        yield
    finally:
        _lent_store.reset(token)


class SessionUserBackend(ModelBackend):
    """Django's ModelBackend (passwords, model permissions, `user_can_authenticate`), whose
    `get_user` takes the user the lent session read in its own statement when it can."""

    def get_user(self, user_id):
        store = _lent_store.get()
        user = store.user_read_with_session(user_id) if store is not None else None
        if user is None:
            return super().get_user(user_id)
        return user if self.user_can_authenticate(user) else None
