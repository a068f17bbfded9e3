"""Who may manage API keys, sessions and user accounts. The services check these (so the
admin, commands and API share one rule); the admin asks them to decide what to show.

A key or a session *is* its user: whoever holds it acts with all of that user's rights.
So minting a key for someone else is impersonation, and these rules never let anyone act
for a user with more privileges than their own:

- Own keys: every active user may create, see and revoke their own keys (a key can do no
  more than its owner can by signing in).
- Other users' keys: `sessions_app.view_apikey` lists them (metadata only, never a
  secret); `sessions_app.change_apikey` revokes them, except a superuser's; only a
  superuser may create a key for another user (no permission grants that).
- Sessions: one's own may always be revoked; `sessions_app.delete_session` revokes other
  users' sessions, except a superuser's.
- Users: only a superuser may change a superuser, make someone superuser or change groups
  and permissions; `auth.change_user` covers the rest (names, email, staff, active).
  Listing and searching users (names, emails) needs `auth.view_user`; other staff find a
  user in autocomplete fields only by exact username, and never search by email.
`actor=None` is the system (manage.py), which may do everything.
"""

from __future__ import annotations


def _active(actor) -> bool:
    return bool(actor is not None and actor.is_active)


def _outranks_or_equals(actor, user) -> bool:
    """False when `user` has more privileges than `actor` (a superuser, to a non-superuser)."""
    return actor.is_superuser or not getattr(user, "is_superuser", False)


def may_see_all_keys(actor) -> bool:
    return _active(actor) and (actor.is_superuser or actor.has_perm("sessions_app.view_apikey"))


def may_create_key_for(actor, owner) -> bool:
    if actor is None:
        return True
    return _active(actor) and (actor.pk == owner.pk or actor.is_superuser)


def may_revoke_key(actor, key) -> bool:
    if actor is None:
        return True
    if not _active(actor):
        return False
    if key.user_id == actor.pk:
        return True
    return actor.has_perm("sessions_app.change_apikey") and _outranks_or_equals(actor, key.user)


def may_revoke_sessions_of(actor, user) -> bool:
    """`user` None: an anonymous session."""
    if actor is None:
        return True
    if not _active(actor):
        return False
    if user is not None and user.pk == actor.pk:
        return True
    return actor.has_perm("sessions_app.delete_session") and _outranks_or_equals(actor, user)


def may_change_user(actor, user) -> bool:
    return actor is None or (_active(actor) and _outranks_or_equals(actor, user))


def may_change_access(actor) -> bool:
    """Superuser flag, groups and permissions: only superusers (or the system)."""
    return actor is None or (_active(actor) and actor.is_superuser)


def may_browse_users(actor) -> bool:
    from django.contrib.auth import get_user_model

    opts = get_user_model()._meta
    return _active(actor) and actor.has_perm(f"{opts.app_label}.view_{opts.model_name}")


def search_fields_without_email(actor, fields):
    """An admin's `fields` minus user emails, for staff who may not browse users."""
    return tuple(fields) if may_browse_users(actor) else tuple(f for f in fields if not f.endswith("user__email"))
