"""Every audit action and entity type, registered in one place (as Zulip's
AuditLogEventType). `audit_record` / `audit_row` refuse a name that is not listed here,
the API's audit filters accept only these values, and the OpenAPI schema lists them as
enums. Adding an action: add a member here, then use it at the call site."""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    # projects and their members
    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_DELETED = "project.deleted"
    PROJECT_MEMBER_ADDED = "project.member_added"
    PROJECT_MEMBER_ROLE_CHANGED = "project.member_role_changed"
    PROJECT_MEMBER_REMOVED = "project.member_removed"
    # backlogs, workflow statuses, epics
    BACKLOG_CREATED = "backlog.created"
    BACKLOG_UPDATED = "backlog.updated"
    BACKLOG_DELETED = "backlog.deleted"
    STATUS_CREATED = "status.created"
    STATUS_UPDATED = "status.updated"
    STATUS_DELETED = "status.deleted"
    EPIC_CREATED = "epic.created"
    EPIC_UPDATED = "epic.updated"
    EPIC_DELETED = "epic.deleted"
    # stories
    STORY_CREATED = "story.created"
    STORY_UPDATED = "story.updated"
    STORY_STATUS_CHANGED = "story.status_changed"
    # Written by the database trigger of stories migration 0004 (a raw-SQL status change).
    STORY_STATUS_CHANGED_OUTSIDE = "story.status_changed_outside"
    STORY_MOVED = "story.moved"
    STORY_RANKED = "story.ranked"
    STORY_DELETED = "story.deleted"
    # links
    DEPENDENCY_ADDED = "dependency.added"
    DEPENDENCY_REMOVED = "dependency.removed"
    PROJECT_DEPENDENCY_ADDED = "project_dependency.added"
    PROJECT_DEPENDENCY_REMOVED = "project_dependency.removed"
    # two-way git sync (stories.sync)
    PROJECT_SYNC_LINKED = "project.sync_linked"
    PROJECT_SYNC_UNLINKED = "project.sync_unlinked"
    PROJECT_SYNCED = "project.synced"
    SYNC_CONFLICT_RESOLVED = "project.sync_conflict_resolved"
    # sessions, API keys, users
    SESSION_REVOKED = "session.revoked"
    SESSION_REVOKED_ALL = "session.revoked_all"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_ACCESS_CHANGED = "user.access_changed"
    USER_DEACTIVATED = "user.deactivated"
    # imports: a parked conflict resolved (stories.importer.conflicts)
    IMPORT_CONFLICT_RESOLVED = "import_conflict.resolved"
    # the audit log itself
    AUDIT_PURGED = "audit.purged"
    # webhooks (the events app)
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_REDELIVERY_REQUESTED = "webhook.redelivery_requested"
    WEBHOOK_PING_REQUESTED = "webhook.ping_requested"
    OUTBOX_PURGED = "outbox.purged"


class EntityType(StrEnum):
    """What an audit row is about; `entity_id` is that entity's id (a session: the first
    characters of its id). By default a row's type is its target's model name."""

    PROJECT = "project"
    PROJECT_MEMBER = "projectmember"
    BACKLOG = "backlog"
    STATUS = "status"
    EPIC = "epic"
    STORY = "story"
    STORY_DEPENDENCY = "story_dependency"
    PROJECT_DEPENDENCY = "project_dependency"
    SESSION = "session"
    API_KEY = "api_key"
    USER = "user"
    AUDIT_LOG = "audit_log"
    WEBHOOK_ENDPOINT = "webhook_endpoint"
    OUTBOX = "outbox"
    IMPORT_CONFLICT = "import_conflict"


# Rows about a link between two projects: visible to the readers of either side.
LINK_ENTITY_TYPES = (EntityType.STORY_DEPENDENCY, EntityType.PROJECT_DEPENDENCY)


# Event types of the outbox (events feed, SSE, webhooks), one per audit action: the
# event a committed write publishes is named by its audit row's action. The names are a
# public contract (webhook subscribers filter on them): never rename one, add new ones.
# The raw-SQL status change (STORY_STATUS_CHANGED_OUTSIDE) is written by a database
# trigger, not by audit_record; a trigger on audit_log (audit 0006) gives its rows their
# event. An action that should publish nothing would be listed here.
NO_EVENT: frozenset[AuditAction] = frozenset()
EVENT_TYPES: dict[str, str] = {action.value: action.value for action in AuditAction if action not in NO_EVENT}


def event_type_for(action: str) -> str | None:
    """The event type published for a registered audit action (None: no event)."""
    return EVENT_TYPES.get(action)


def _registered(enum: type[StrEnum], value: str, what: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise ValueError(f"Unknown audit {what} {value!r}: register it in audit.events.{enum.__name__}.") from None


def registered_action(value: str) -> str:
    """`value` as a registered action (a plain string); ValueError when unknown."""
    return _registered(AuditAction, value, "action")


def registered_entity_type(value: str) -> str:
    """`value` as a registered entity type (a plain string); ValueError when unknown."""
    return _registered(EntityType, value, "entity type")
