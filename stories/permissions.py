"""Per-project roles: viewer reads; member writes stories, dependencies and transitions;
admin also manages members, backlogs and the workflow; owner also deletes or archives.

The policy itself lives in stories.rules; these names stay importable for callers."""

from __future__ import annotations

from .rules import has_project_role, project_role, require_project_role

__all__ = ["has_project_role", "project_role", "require_project_role"]
