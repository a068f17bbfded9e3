"""The write tools: each one makes the calls the matching API endpoint makes — the
project through stories.api.permissions (404 hidden, 403 without the role or with a
read-only key), the body through the API's serializers (same fields, limits and
reasons), the write through one service (stories.services, the bulk upsert, the
importer), which checks the role again, the version under the row lock, the graph and
the workflow, and writes the audit row."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404

from stories import selectors, services
from stories.api import serializers as s
from stories.api.actions import MoveInputSerializer, RankInputSerializer, dependency_payload, visible_story_by_ref
from stories.api.io_views import ImportFailed
from stories.api.permissions import get_project_for, require_role
from stories.api.views import get_story, validated
from stories.bulk import story_bulk_upsert
from stories.importer import ImportLimits, Source, import_sources
from stories.models import Backlog, Story, StoryDependency
from stories.storyfiles import safe_relative_path
from storyhub.errors import ConflictError, NotFoundError

from .caller import Caller
from .tools_read import story_get


def _story_for_write(caller: Caller, args: dict[str, Any]):
    project = get_project_for(caller, args["project"])
    story = get_story(project, args["key"])
    require_role(caller, project, "member")
    return story


def _after(caller: Caller, args: dict[str, Any]) -> Any:
    """The story as it is now (what story_get answers), so the caller has the new version."""
    return story_get(caller, {"project": args["project"], "key": args["key"]})


def story_upsert(caller: Caller, args: dict[str, Any]) -> Any:
    project = get_project_for(caller, args["project"])
    require_role(caller, project, "member")
    dry_run = args.get("dry_run", False)
    result = story_bulk_upsert(actor=caller.user, project=project, items=args["stories"], dry_run=dry_run)
    body = result.as_dict()
    return {"dry_run": dry_run, **body}


def story_transition(caller: Caller, args: dict[str, Any]) -> Any:
    story = _story_for_write(caller, args)
    body = {k: args[k] for k in ("status", "notes", "version", "override_blocked", "reason") if k in args}
    data = validated(s.TransitionInputSerializer, body)
    with transaction.atomic():
        services.story_transition(
            actor=caller.user,
            story=story,
            status=data["status"],
            notes=data.get("notes", ""),
            expected_version=data.get("version"),
            override_blocked=data["override_blocked"],
            override_reason=data["reason"],
        )
    return _after(caller, args)


def story_move(caller: Caller, args: dict[str, Any]) -> Any:
    story = _story_for_write(caller, args)
    data = validated(MoveInputSerializer, {k: args[k] for k in ("backlog", "version") if k in args})
    backlog = None
    if data["backlog"] is not None:
        backlog = Backlog.objects.filter(project=story.project, slug=data["backlog"]).first()
        if backlog is None:
            message = f"No backlog '{data['backlog']}' in this project."
            raise NotFoundError(message, details={"backlog": [message]})
    services.story_move(actor=caller.user, story=story, backlog=backlog, expected_version=data.get("version"))
    return _after(caller, args)


def story_rank(caller: Caller, args: dict[str, Any]) -> Any:
    story = _story_for_write(caller, args)
    data = validated(RankInputSerializer, {k: args[k] for k in ("before", "after", "version") if k in args})
    anchors = {}
    for name in ("before", "after"):
        if name in data:
            other = Story.objects.filter(project=story.project, key=data[name]).first()
            if other is None:
                message = f"No story '{data[name]}' in this project."
                raise NotFoundError(message, details={name: [message]})
            anchors[name] = other
    services.story_rank(actor=caller.user, story=story, expected_version=data.get("version"), **anchors)
    return _after(caller, args)


def dependency_add(caller: Caller, args: dict[str, Any]) -> Any:
    story = _story_for_write(caller, args)
    data = validated(
        s.DependencyInputSerializer, {k: args[k] for k in ("depends_on", "type", "description") if k in args}
    )
    target = visible_story_by_ref(caller, data["depends_on"], story.project)
    try:
        dep = services.dependency_add(
            actor=caller.user, story=story, depends_on=target, type=data["type"], description=data["description"]
        )
    except DjangoValidationError as exc:
        # Self-links and duplicates: well-formed, but in conflict with the graph (as the API says).
        raise ConflictError("This dependency cannot be added.", details=exc.message_dict) from None
    link = dependency_payload(dep, story.project, selectors.EVERYTHING)  # the caller named the target
    return {"key": story.key, "depends_on": link["depends_on"], "type": link["type"]}


def dependency_remove(caller: Caller, args: dict[str, Any]) -> Any:
    story = _story_for_write(caller, args)
    target = visible_story_by_ref(caller, args["depends_on"], story.project)
    dep = (
        StoryDependency.objects.filter(story=story, depends_on=target)
        .select_related("story__project", "depends_on")
        .first()
    )
    if dep is None or not caller.user.has_perm("stories.delete_storydependency", dep):
        raise Http404
    services.dependency_remove(actor=caller.user, dependency=dep)
    return {"key": story.key, "removed": args["depends_on"]}


def _sources(files: list[dict[str, str]]) -> list[Source]:
    limit = ImportLimits().max_file_bytes
    out = []
    for item in files:
        path, data = item["path"], item["text"].encode("utf-8", "surrogatepass")
        if not safe_relative_path(path.replace("\\", "/")):
            out.append(Source(path=path[:200], error="not a safe relative path"))
        elif len(data) > limit:
            out.append(Source(path=path, error=f"file too large: more than {limit} bytes"))
        else:
            out.append(Source(path=path, data=data))
    return out


def import_story_files(caller: Caller, args: dict[str, Any]) -> Any:
    project = get_project_for(caller, args["project"])
    require_role(caller, project, "member")
    # Not atomic by default, like POST import/ and import_stories.
    atomic = args["atomic"] if "atomic" in args else not args.get("continue_on_error", True)
    report = import_sources(
        _sources(args["files"]),
        project=project,
        actor=caller.user,
        dry_run=args.get("dry_run", False),
        continue_on_error=not atomic,
        source="mcp",  # the import run's record says where it came from
    )
    body = report.as_dict()
    if not report.ok and atomic:
        failed = [f for f in report.files if f.outcome == "failed"]
        raise ImportFailed(
            f"{len(failed)} of {len(report.files)} files cannot be imported; nothing was written.",
            details={f.path: [f"line {f.line}: {f.reason}" if f.line else f.reason] for f in failed},
            extra={"report": body},
        )
    return body
