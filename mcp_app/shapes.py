"""Compact JSON shapes of tool results, cut from the API's payloads (stories.api.payloads)
so an assistant reads the same values the API answers, in fewer tokens: empty fields are
left out, a dependency is one string ("KEY", "other:KEY", "KEY (relates)", HIDDEN_REF)."""

from __future__ import annotations

from typing import Any

from stories.rules import HIDDEN_REF

ROW_FIELDS = ("key", "project", "title", "status", "priority", "estimate", "epic", "backlog", "owner")
DETAIL_DROP = ("points_min", "points_max", "created_at")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def dependency_refs(dependencies: list[dict[str, Any]]) -> list[str]:
    out = []
    for dep in dependencies:
        ref = HIDDEN_REF if dep.get("hidden") else dep["depends_on"]
        out.append(ref if dep["type"] == "blocks" else f"{ref} ({dep['type']})")
    return out


def story_row(payload: dict[str, Any]) -> dict[str, Any]:
    """One story in a list: what planning needs, no body or metadata."""
    row = {name: payload[name] for name in ROW_FIELDS if not _empty(payload.get(name))}
    deps = dependency_refs(payload.get("dependencies") or [])
    if deps:
        row["deps"] = deps
    row["blocked"] = payload["blocked"]
    row["ready"] = payload["ready"]
    row["version"] = payload["version"]
    return row


def story_detail(payload: dict[str, Any]) -> dict[str, Any]:
    """One story in full (story_get): every API field that holds a value."""
    out = {k: v for k, v in payload.items() if k not in DETAIL_DROP and k != "dependencies" and not _empty(v)}
    out["dependencies"] = dependency_refs(payload.get("dependencies") or [])
    out["blocked"], out["ready"] = payload["blocked"], payload["ready"]
    return out


def walk_item(item: dict[str, Any]) -> dict[str, Any]:
    """A story reached by a blockers / dependents walk (a hidden one stays a placeholder)."""
    if item.get("hidden"):
        return {"hidden": True, "depth": item["depth"]}
    return {**story_row(item), "depth": item["depth"]}
