"""Linking a project to a git repository: the SyncLink write services and the rules for
what may be linked (stories.sync). Credentials never live in the database: a link names
an environment variable (`STORYHUB_GIT_…`) whose value is `user:token` (or a token alone),
read when the sync runs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import AuditAction
from audit.services import audit_record
from storyhub.errors import ConflictError

from ..models import Project, ProjectMember, SyncLink
from ..permissions import require_project_role

CREDENTIALS_ENV_RE = re.compile(r"STORYHUB_GIT_[A-Z0-9_]{1,80}")
_URL_RE = re.compile(r"(https?|ssh|git|file)://[^\s]+|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^\s]+")
LINK_FIELDS = ("repository", "branch", "folders", "credentials_env", "enabled")
_BRANCH_RE = re.compile(r"[A-Za-z0-9._/-]{1,200}")


def is_local(repository: str) -> bool:
    return not _URL_RE.fullmatch(repository)


def check_repository(repository: str) -> None:
    """A URL without credentials in it, or a local path under GIT_SYNC_LOCAL_ROOTS."""
    text = (repository or "").strip()
    if not text:
        raise ValidationError({"repository": ["Give a repository URL or a local path."]})
    if "\x00" in text or any(ch.isspace() for ch in text):
        raise ValidationError({"repository": ["A repository may not contain spaces or NUL characters."]})
    if re.match(r"[a-z][a-z0-9+.-]*://[^/]*@", text, re.IGNORECASE) and not text.startswith("ssh://"):
        raise ValidationError(
            {"repository": ["Credentials may not be part of the URL: name an environment variable in credentials_env."]}
        )
    if text.startswith("file://"):
        text = text[len("file://") :]
    if not is_local(text):
        return
    path = Path(text)
    if not path.is_absolute():
        raise ValidationError({"repository": ["A local repository must be an absolute path."]})
    roots = [Path(r).resolve() for r in settings.GIT_SYNC_LOCAL_ROOTS if r.strip() and Path(r.strip()).is_absolute()]
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise ValidationError(
            {"repository": ["Local repositories are not allowed here (GIT_SYNC_LOCAL_ROOTS); give a URL."]}
        )


def check_folders(folders: Any) -> list[str]:
    if folders in (None, ""):
        return []
    if isinstance(folders, str):
        folders = folders.split(",")
    if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        raise ValidationError({"folders": ["A list of folder paths relative to the repository's root."]})
    out = []
    for folder in folders:
        clean = folder.strip().strip("/")
        if clean in ("", "."):
            clean = ""
        parts = clean.split("/") if clean else []
        if any(p in ("", ".", "..") for p in parts) or "\\" in clean or "\x00" in clean:
            raise ValidationError({"folders": [f"{folder!r} is not a relative folder path."]})
        if clean not in out:
            out.append(clean)
    return [] if "" in out else out


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: data[k] for k in LINK_FIELDS if k in data}
    if "repository" in values:
        values["repository"] = str(values["repository"]).strip()
        check_repository(values["repository"])
    if "branch" in values:
        branch = str(values["branch"] or "").strip()
        if not _BRANCH_RE.fullmatch(branch) or ".." in branch or branch.startswith(("/", "-")):
            raise ValidationError({"branch": ["Not a branch name."]})
        values["branch"] = branch
    if "folders" in values:
        values["folders"] = check_folders(values["folders"])
    if "credentials_env" in values:
        name = str(values["credentials_env"] or "").strip()
        if name and not CREDENTIALS_ENV_RE.fullmatch(name):
            raise ValidationError(
                {
                    "credentials_env": [
                        "The name of an environment variable starting with STORYHUB_GIT_ (not its value)."
                    ]
                }
            )
        values["credentials_env"] = name
    return values


@transaction.atomic
def sync_link_set(*, actor, project: Project, data: Mapping[str, Any], expected_version: int | None = None) -> SyncLink:
    """Link `project` to a repository, or change its link (project admin)."""
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    values = _clean(data)
    link = SyncLink.objects.select_for_update().filter(project=project).first()
    created = link is None
    if link is None:
        link = SyncLink(project=project)
    elif expected_version is not None and link.version != expected_version:
        raise ConflictError("The sync link was changed by someone else.", extra={"current_version": link.version})
    changes = {k: (getattr(link, k), v) for k, v in values.items() if getattr(link, k) != v}
    for name, value in values.items():
        setattr(link, name, value)
    if "repository" in changes or "branch" in changes:
        # Another repository (or branch) shares no history with what was agreed before.
        link.last_commit = ""
        if not created:
            link.files.all().delete()
    link.full_clean()
    if not created:
        link.version += 1
    link.save()
    audit_record(actor=actor, action=AuditAction.PROJECT_SYNC_LINKED, target=project, changes=changes)
    return link


@transaction.atomic
def sync_link_remove(*, actor, project: Project) -> None:
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    link = SyncLink.objects.select_for_update().filter(project=project).first()
    if link is None:
        return
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_SYNC_UNLINKED,
        target=project,
        extra={"repository": link.repository, "branch": link.branch},
    )
    link.delete()


def credentials_for(link: SyncLink) -> tuple[str, str] | None:
    """(username, secret) from the link's environment variable; None without one. A
    variable that is named but not set is an error (the sync would fail obscurely)."""
    if not link.credentials_env:
        return None
    value = os.environ.get(link.credentials_env)
    if not value:
        raise ValueError(f"environment variable {link.credentials_env} is not set")
    username, sep, secret = value.partition(":")
    return (username, secret) if sep else ("git", value)
