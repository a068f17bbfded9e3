"""Sessions, API keys and user accounts: revoking sessions, creating and revoking keys,
and the admin's edits of users (each audited; a password hash is never logged). Who may
do which is decided in sessions_app.permissions; deactivating a user revokes their keys
and sessions in the same transaction."""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction, EntityType
from audit.services import audit_record

from . import permissions as policy
from .models import ApiKey, Session


@transaction.atomic
def session_revoke(*, actor, session: Session) -> None:
    """End one session now."""
    own = actor is not None and session.user_id == actor.pk  # spares loading the user
    if not (own or policy.may_revoke_sessions_of(actor, session.user)):
        raise PermissionDenied("You may not revoke this session.")
    audit_record(
        actor=actor,
        action=AuditAction.SESSION_REVOKED,
        target=session,
        entity_type=EntityType.SESSION,
        entity_id=session.sid[:8],
        extra={"session_user_id": session.user_id},
    )
    Session.objects.filter(sid=session.sid).delete()


@transaction.atomic
def session_revoke_all_for_user(*, actor, user) -> int:
    """End every session of `user`; returns how many there were."""
    if not policy.may_revoke_sessions_of(actor, user):
        raise PermissionDenied(f"You may not revoke the sessions of {user.get_username()}.")
    return _revoke_sessions(actor=actor, user=user)


def _revoke_sessions(*, actor, user, reason: str | None = None) -> int:
    count, _ = Session.objects.filter(user=user).delete()
    extra = {"count": count} if reason is None else {"count": count, "reason": reason}
    audit_record(
        actor=actor, action=AuditAction.SESSION_REVOKED_ALL, target=user, entity_type=EntityType.USER, extra=extra
    )
    return count


# --------------------------------------------------------------------------- API keys

KEY_PREFIX = "shk_"
# Only bump last_used_at when it is older than this, so reads do not write every time.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, actor, user, name: str, read_only: bool = False, expires_days: int | None = None
) -> tuple[ApiKey, str]:
    """Create a key for `user`; returns (key, plaintext). The plaintext is never stored.
    Only `user` themselves or a superuser may (a key acts with all of its user's rights)."""
    if not policy.may_create_key_for(actor, user):
        raise PermissionDenied("Only a superuser may create an API key for another user.")
    if not name or len(name) > 100:
        raise ValidationError({"name": ["Give a name of 1 to 100 characters."]})
    if expires_days is not None and expires_days < 1:
        raise ValidationError({"expires_days": ["Give a positive number of days."]})
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user=user,
        name=name,
        prefix=plaintext[: len(KEY_PREFIX) + 8],
        key_hash=api_key_hash(plaintext),
        read_only=read_only,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    key.full_clean()
    key.save(force_insert=True)
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY_CREATED,
        target=key,
        entity_type=EntityType.API_KEY,
        extra={"user_id": user.pk, "name": name, "prefix": key.prefix, "read_only": read_only},
    )
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, actor, key: ApiKey) -> ApiKey:
    """Revoke a key now; later requests with it answer 401."""
    if not policy.may_revoke_key(actor, key):
        raise PermissionDenied(f"You may not revoke the key {key.name!r} of {key.user.get_username()}.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action=AuditAction.API_KEY_REVOKED, target=key, entity_type=EntityType.API_KEY)
    return key


def _revoke_keys(*, actor, user, reason: str) -> int:
    now = timezone.now()
    keys = list(ApiKey.objects.select_for_update().filter(user=user, revoked_at=None))
    ApiKey.objects.filter(pk__in=[k.pk for k in keys]).update(revoked_at=now)
    for key in keys:
        audit_record(
            actor=actor,
            action=AuditAction.API_KEY_REVOKED,
            target=key,
            entity_type=EntityType.API_KEY,
            extra={"reason": reason},
        )
    return len(keys)


def api_key_touch(*, key: ApiKey) -> None:
    """Record the key's last use (not audited: it is bookkeeping, not a change)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def api_key_lookup(plaintext: str) -> ApiKey | None:
    """The key (active or not) matching `plaintext`, or None."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    return ApiKey.objects.select_related("user").filter(key_hash=api_key_hash(plaintext)).first()


class ApiKeyRejected(Exception):
    """The key given as a bearer credential cannot be used; the message says why."""


def api_key_authenticate(plaintext: str) -> ApiKey:
    """The usable key matching `plaintext` (its last use recorded), for every surface that
    takes keys (the API's `Authorization: Bearer`, the MCP server over HTTP and stdio).
    Raises ApiKeyRejected: unknown, revoked, expired, or its user inactive."""
    key = api_key_lookup(plaintext)
    if key is None:
        raise ApiKeyRejected("Unknown API key.")
    if key.revoked_at is not None:
        raise ApiKeyRejected("This API key was revoked.")
    if not key.is_active:
        raise ApiKeyRejected("This API key has expired.")
    if not key.user.is_active:
        raise ApiKeyRejected("The key's user is inactive.")
    api_key_touch(key=key)
    return key


# --------------------------------------------------------------------------- users

# What a user row's audit entry shows; the password hash never, only that it changed.
USER_AUDITED_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser")


def _password_state(user) -> str:
    return "set" if user.has_usable_password() else "unusable"


@transaction.atomic
def user_save(*, actor, user):
    """Create or update `user` (the admin's user forms, its password form included) with
    an audit row naming each changed field, old → new. Deactivating a user revokes their
    API keys and sessions (audited), so they do not work again on reactivation."""
    model = type(user)
    before = model.objects.select_for_update().filter(pk=user.pk).first() if user.pk else None
    _check_user_change(actor, before, user)
    user.save()
    if before is None:
        changes: dict[str, tuple[Any, Any]] = {f: (None, getattr(user, f)) for f in USER_AUDITED_FIELDS}
        changes["password"] = (None, _password_state(user))
        audit_record(
            actor=actor, action=AuditAction.USER_CREATED, target=user, entity_type=EntityType.USER, changes=changes
        )
        return user
    changes = {
        f: (getattr(before, f), getattr(user, f)) for f in USER_AUDITED_FIELDS if getattr(before, f) != getattr(user, f)
    }
    if before.password != user.password:
        changes["password"] = (_password_state(before), "changed" if user.has_usable_password() else "unusable")
    if changes:
        audit_record(
            actor=actor, action=AuditAction.USER_UPDATED, target=user, entity_type=EntityType.USER, changes=changes
        )
    if before.is_active and not user.is_active:
        _revoke_keys(actor=actor, user=user, reason="user deactivated")
        _revoke_sessions(actor=actor, user=user, reason="user deactivated")
    return user


def _check_user_change(actor, before, user) -> None:
    if before is not None and not policy.may_change_user(actor, before):
        raise PermissionDenied("Only a superuser may change a superuser.")
    if user.is_superuser != (before.is_superuser if before else False) and not policy.may_change_access(actor):
        raise PermissionDenied("Only a superuser may grant or remove superuser status.")


@transaction.atomic
def user_set_access(*, actor, user, groups=None, permissions=None) -> None:
    """Set `user`'s groups and/or direct permissions (None leaves one as it is), with an
    audit row listing what was there before and after."""
    changes = {}
    for name, manager, new in (
        ("groups", user.groups, groups),
        ("user_permissions", user.user_permissions, permissions),
    ):
        if new is None:
            continue
        old_items, new_items = set(manager.all()), set(new)
        if old_items != new_items:
            if not policy.may_change_access(actor):
                raise PermissionDenied("Only a superuser may change groups and permissions.")
            manager.set(new_items)
            changes[name] = (sorted(map(str, old_items)), sorted(map(str, new_items)))
    if changes:
        audit_record(
            actor=actor,
            action=AuditAction.USER_ACCESS_CHANGED,
            target=user,
            entity_type=EntityType.USER,
            changes=changes,
        )
