"""StoryHub's small set of application errors. Services raise these (or Django's
ValidationError / PermissionDenied); the API's exception handler and the admin turn them
into one error shape with a stable ``code``."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.extra = extra or {}


class ConflictError(ApplicationError):
    """The caller's version of the object is stale."""

    code = "conflict"
    http_status = 409


class StaleVersionError(ConflictError):
    """The version the caller saw is no longer the current one (409 ``conflict``; the
    API answers 412 instead when that version came from If-Match)."""


class PreconditionFailed(ConflictError):
    """If-Match named a version that is no longer current. `etag` (the current one) is
    sent back in the 412's ETag header."""

    code = "precondition_failed"
    http_status = 412

    def __init__(self, message: str, *, etag: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.etag = etag


class DependencyCycleError(ApplicationError):
    code = "dependency_cycle"
    http_status = 409

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(
            f"This dependency would close a cycle: {' → '.join(cycle)}.",
            details={"depends_on": [f"cycle: {' → '.join(cycle)}"]},
            extra={"cycle": cycle},
        )


class InvalidTransitionError(ApplicationError):
    code = "invalid_transition"
    http_status = 409

    def __init__(self, current: str, target: str, allowed: list[str]):
        self.allowed = allowed
        super().__init__(
            f"Cannot move from '{current}' to '{target}'; allowed: {', '.join(allowed) or 'none'}.",
            details={"status": [f"allowed targets from '{current}': {', '.join(allowed) or 'none'}"]},
            extra={"allowed": allowed, "current": current},
        )


class BlockedError(ApplicationError):
    """The blocked guard (stories.readiness): a story with an open `blocks` dependency may
    not start or complete. `blockers` are "KEY" / "slug:KEY", or "(hidden)" for a story
    the actor cannot see."""

    code = "blocked"
    http_status = 409

    def __init__(self, blockers: list[str], *, key: str | None = None, target: str | None = None):
        self.blockers = blockers
        story = key or "Story"
        into = f" move to '{target}'" if target else " start or complete"
        super().__init__(
            f"{story} is blocked by unfinished stories: {', '.join(blockers)}; it cannot{into} until they are "
            "completed (a project admin may override this with a reason).",
            details={"status": [f"blocked by: {', '.join(blockers)}"]},
            extra={"blockers": blockers},
        )


class NotFoundError(ApplicationError):
    code = "not_found"
    http_status = 404


class SyncFailedError(ApplicationError):
    """A git sync could not reach or update its repository (one line, no secret in it);
    nothing was written."""

    code = "sync_failed"
    http_status = 502


class BulkValidationError(ApplicationError):
    """One or more items of a bulk write are not valid; nothing was written.
    details = {"items": [{"index", "key", "field", "reason"}, …]}."""

    code = "bulk_invalid"
    http_status = 400

    def __init__(self, errors: list[dict[str, Any]], *, total: int):
        self.errors = errors
        failed = len({e["index"] for e in errors})
        super().__init__(
            f"{failed} of {total} items are not valid; nothing was written.",
            details={"items": errors},
        )
