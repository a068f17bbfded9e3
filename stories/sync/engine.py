"""One sync of a project with its git repository, both ways.

What the last sync agreed on is kept per file (SyncedFile: path, story, sha256 of the
bytes). A side has changed a file when its bytes hash differently from that: git's file,
or the file StoryHub writes for the story now (stories.exporter.story_files, which keeps
the file's shape). Then, per file:

- changed in git only: imported through the import service (a new file creates its
  story); deleted in git: the story is archived (moved to the `archive` backlog), never
  deleted;
- changed in StoryHub only (or a new story): written back to its own path;
- changed on both sides to different bytes: a SyncConflict, shown in the admin; both
  sides are left alone until it is resolved;
- changed on both sides to the same bytes: agreed, nothing to write.

All writes happen in one database transaction, which the push (compare-and-swap on the
branch) ends: a failure anywhere before the push rolls everything back and leaves the
remote untouched; a crash after the push and before the commit is repaired by the next
sync, which finds git already holding what StoryHub would write.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.context import write_context
from audit.events import AuditAction, EntityType
from audit.models import AuditLog
from audit.services import audit_record

from .. import services
from ..exporter import story_files
from ..importer import Source, import_sources
from ..models import Backlog, Project, ProjectMember, Story, SyncConflict, SyncedFile, SyncLink
from ..permissions import require_project_role
from ..storyfiles import export_path
from .gitrepo import FileChange, GitRemote, GitSyncError, display_url
from .links import credentials_for

logger = logging.getLogger("stories.sync")

ARCHIVE_BACKLOG = "archive"
Progress = Callable[[str, int, int], None]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SyncReport:
    project: str
    commit: str = ""  # the remote head after the sync
    pushed_commit: str = ""  # the commit StoryHub pushed ("" = none)
    imported: list[str] = field(default_factory=list)  # paths
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"path", "reason"}
    archived: list[str] = field(default_factory=list)  # keys
    pushed: list[str] = field(default_factory=list)  # paths written to git
    removed: list[str] = field(default_factory=list)  # paths removed from git (story deleted)
    conflicts: list[str] = field(default_factory=list)  # paths
    agreed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.imported or self.archived or self.pushed or self.removed or self.conflicts)

    def summary(self) -> str:
        return (
            f"{self.project}: {len(self.imported)} imported, {len(self.archived)} archived, "
            f"{len(self.pushed)} pushed, {len(self.removed)} removed, {len(self.conflicts)} conflicts"
            + (f", {len(self.failed)} failed" if self.failed else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "commit": self.commit,
            "pushed_commit": self.pushed_commit,
            "imported": self.imported,
            "failed": self.failed,
            "archived": self.archived,
            "pushed": self.pushed,
            "removed": self.removed,
            "conflicts": self.conflicts,
        }


def open_remote(link: SyncLink) -> GitRemote:
    return GitRemote(
        link.repository,
        link.branch,
        cache_dir=f"{settings.GIT_SYNC_CACHE_DIR}/link-{link.pk}",
        credentials=credentials_for(link),
    )


def archive_story(*, actor, base: SyncedFile) -> str:
    """Archive the story of a file git deleted: moved to the project's `archive` backlog
    (created on demand), never deleted; its key."""
    story = base.story
    assert story is not None
    project = story.project
    backlog = Backlog.objects.filter(project=project, slug=ARCHIVE_BACKLOG).first()
    if backlog is None:
        backlog = services.backlog_create(
            actor=None, project=project, slug=ARCHIVE_BACKLOG, name="Archive", type=Backlog.Type.ARCHIVE
        )
    services.story_move(actor=actor, story=story, backlog=backlog)
    base.archived = True
    base.save(update_fields=["archived"])
    return story.key


def sync_project(
    *, actor, project: Project, progress: Progress | None = None, remote: GitRemote | None = None
) -> SyncReport:
    """Sync `project` with its linked repository (project admin; `actor=None`: the
    system). Raises GitSyncError (one line, no secret) when git cannot be reached or the
    branch moved during the sync; nothing is written then."""
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    link = SyncLink.objects.get(project=project)
    try:
        remote = remote or open_remote(link)
    except ValueError as exc:  # credentials variable not set
        _record_error(link, str(exc))
        raise GitSyncError(f"{project.slug}: {exc}") from None
    try:
        with write_context(source="sync"), transaction.atomic():
            locked = SyncLink.objects.select_for_update().get(pk=link.pk)
            report = _Sync(locked, remote, actor, progress).run()
    except GitSyncError as exc:
        _record_error(link, str(exc))
        raise
    finally:
        remote.close()
    return report


def _record_error(link: SyncLink, message: str) -> None:
    # The link's state, like an import run's report, is bookkeeping: no audit row.
    SyncLink.objects.filter(pk=link.pk).update(last_error=message[:2000])
    logger.warning("sync of project %s failed: %s", link.project_id, message)


class _Sync:
    def __init__(self, link: SyncLink, remote: GitRemote, actor, progress: Progress | None):
        self.link = link
        self.remote = remote
        self.actor = actor
        self.progress = progress
        self.project = link.project
        self.report = SyncReport(project=self.project.slug)
        self.started = timezone.now()
        self.base: dict[str, SyncedFile] = {f.path: f for f in link.files.select_related("story")}
        self.blocked = set(link.conflicts.filter(state=SyncConflict.State.OPEN).values_list("path", flat=True))
        self.to_import: dict[str, bytes] = {}
        self.to_push: dict[str, tuple[Story | None, bytes]] = {}
        self.agree: dict[str, tuple[int | None, str]] = {}  # path -> (story id, hash)

    def _step(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def run(self) -> SyncReport:
        head = self.remote.fetch()
        self.report.commit = (head or b"").decode()
        remote_files = self.remote.files(head, self.link.folders)
        previous = self._previous_files()
        remote_hash = self._remote_hashes(remote_files, previous)
        local = self._local_files()
        self._decide(remote_files, remote_hash, local)
        self._pull()
        self._push(head)
        self._record()
        return self.report

    # ------------------------------------------------------------------ reading

    def _previous_files(self) -> dict[str, bytes]:
        last = self.link.last_commit.encode()
        if not last or last not in self.remote.repo.object_store:
            return {}
        return self.remote.files(last, self.link.folders)

    def _remote_hashes(self, files: dict[str, bytes], previous: dict[str, bytes]) -> dict[str, str]:
        """path -> sha256 of git's file; a file whose blob is the one of the last agreed
        commit takes its agreed hash without being read."""
        out = {}
        for n, (path, blob) in enumerate(sorted(files.items()), start=1):
            base = self.base.get(path)
            if base is not None and previous.get(path) == blob:
                out[path] = base.content_hash
            else:
                out[path] = sha256(self.remote.read(blob))
            if n % 200 == 0:
                self._step("read", n, len(files))
        return out

    def _local_files(self) -> dict[str, tuple[Story, bytes]]:
        """path -> (story, the file StoryHub writes for it now), every story of the
        project but the archived ones whose file git deleted."""
        by_key = {s.key: s for s in Story.objects.filter(project=self.project)}
        path_by_story = {f.story_id: f.path for f in self.base.values() if f.story_id is not None}
        archived = {f.story_id for f in self.base.values() if f.archived}
        stories = Story.objects.filter(project=self.project).exclude(pk__in=archived)

        def path_of(story: dict[str, Any]) -> str:
            found = path_by_story.get(by_key[story["key"]].pk)
            return found or self._new_path(story)

        out = {}
        total = stories.count()
        for story, path, text in story_files(
            self.project, stories, lambda done: self._step("render", done, total), path_of=path_of
        ):
            out[path] = (by_key[story["key"]], text.encode("utf-8"))
        return out

    def _new_path(self, story: dict[str, Any]) -> str:
        """Where a story git does not have yet goes: its file_path when that lies in one of
        the link's folders, else `epic/KEY-slug.md` in the first folder."""
        path = export_path(story)
        folders = self.link.folders
        if not folders or any(path.startswith(f.rstrip("/") + "/") for f in folders):
            return path
        return f"{folders[0].rstrip('/')}/{export_path({**story, 'file_path': ''})}"

    # ------------------------------------------------------------------ deciding

    def _decide(self, remote_files: dict[str, bytes], remote_hash: dict[str, str], local) -> None:
        paths = set(remote_files) | set(local) | set(self.base)
        for path in sorted(paths):
            if path in self.blocked:
                continue
            base = self.base.get(path)
            story, data = local.get(path, (None, None))
            if story is None and base is not None and base.story_id is not None and not base.archived:
                story = base.story  # its rendering moved (a key change); treat it as changed here
            self._decide_one(path, base, remote_files.get(path), remote_hash.get(path), story, data)

    def _decide_one(self, path, base, blob, rhash, story, data) -> None:  # noqa: C901 -- one table of cases
        if base is not None and base.archived and blob is None:
            return  # deleted in git, its story archived: nothing more to do
        agreed = base.content_hash if base is not None else None
        lhash = sha256(data) if data is not None else None
        remote_changed = rhash != agreed
        local_changed = lhash != agreed and not (base is not None and base.archived)
        if not remote_changed and not local_changed:
            return
        if rhash is not None and rhash == lhash:
            self.agree[path] = (story.pk if story else None, rhash)
            self.report.agreed += 1
        elif remote_changed and not local_changed:
            self._take_remote(path, blob, rhash, base)
        elif local_changed and not remote_changed:
            self._take_local(path, story, data)
        else:
            self._conflict(path, blob, rhash, story, data)

    def _take_remote(self, path, blob, rhash, base) -> None:
        if blob is not None:
            self.to_import[path] = self.remote.read(blob)
        elif base is not None and base.story_id is not None:
            self._archive(base)
        elif base is not None:
            base.delete()

    def _take_local(self, path, story, data) -> None:
        if data is not None:
            self.to_push[path] = (story, data)
        else:
            self.to_push[path] = (None, b"")  # the story was deleted in StoryHub: remove its file

    def _conflict(self, path, blob, rhash, story, data) -> None:
        remote_text = self.remote.read(blob).decode("utf-8", "replace") if blob is not None else ""
        SyncConflict.objects.create(
            link=self.link,
            story=story,
            key=story.key if story else "",
            path=path,
            remote_commit=self.report.commit,
            remote_content=remote_text,
            remote_deleted=blob is None,
            remote_hash=rhash or "",
            local_content=(data or b"").decode("utf-8", "replace"),
        )
        self.report.conflicts.append(path)

    def _archive(self, base: SyncedFile) -> None:
        self.report.archived.append(archive_story(actor=self.actor, base=base))

    # ------------------------------------------------------------------ writing

    def _pull(self) -> None:
        if not self.to_import:
            return
        repo = display_url(self.link.repository)
        sources = [
            Source(path=path, data=data, source_path=path, repo=repo) for path, data in sorted(self.to_import.items())
        ]
        result = import_sources(
            sources,
            project=self.project,
            actor=self.actor,
            continue_on_error=True,
            progress=self.progress,
            source="sync",
        )
        keys = {}
        for file in result.files:
            if file.outcome in ("created", "updated", "unchanged") and file.key:
                keys[file.path] = file.key
                self.report.imported.append(file.path)
            else:
                self.report.failed.append({"path": file.path, "reason": file.reason or file.outcome})
        stories = {s.key: s.pk for s in Story.objects.filter(project=self.project, key__in=keys.values())}
        for path, key in keys.items():
            self.agree[path] = (stories.get(key), sha256(self.to_import[path]))

    def _push(self, head: bytes | None) -> None:
        if not self.to_push:
            return
        changes = []
        for path, (story, data) in sorted(self.to_push.items()):
            if story is None:
                changes.append(FileChange(path, None))
                self.report.removed.append(path)
            else:
                changes.append(FileChange(path, data))
                self.report.pushed.append(path)
        commit = self.remote.commit(
            head,
            changes,
            message=self._message(),
            author=settings.GIT_SYNC_AUTHOR,
            now=lambda: self.started.timestamp(),
        )
        self.remote.push(head, commit)  # PushRejected: everything above rolls back
        self.report.pushed_commit = self.report.commit = commit.decode()
        for path, (story, data) in self.to_push.items():
            self.agree[path] = (story.pk, sha256(data)) if story is not None else (None, "")

    def _message(self) -> str:
        """One commit per sync: the stories, the StoryHub users who changed them and the
        audit rows of those changes since the last sync."""
        stories = {s.pk: s.key for s, _ in self.to_push.values() if s is not None}
        rows = list(
            AuditLog.objects.filter(
                project_id=self.project.pk,
                entity_type=EntityType.STORY,
                entity_id__in=[str(pk) for pk in stories],
                id__gt=self.link.last_audit_id,
            )
            .order_by("id")
            .values_list("id", "user_repr")
        )
        users = sorted({name for _, name in rows if name}) or ["(system)"]
        lines = [f"StoryHub sync of {self.project.slug}: {len(self.to_push)} file(s)", ""]
        for path, (story, _) in sorted(self.to_push.items()):
            lines.append(f"- {story.key if story else '(deleted story)'}: {path}")
        lines += ["", f"StoryHub-Users: {', '.join(users)}"]
        lines.append(f"StoryHub-Audit: {', '.join(f'#{i}' for i, _ in rows) or '-'}")
        return "\n".join(lines) + "\n"

    def _record(self) -> None:
        for path, (story_id, content_hash) in self.agree.items():
            if not content_hash:
                SyncedFile.objects.filter(link=self.link, path=path).delete()
                continue
            SyncedFile.objects.update_or_create(
                link=self.link,
                path=path,
                defaults={"story_id": story_id, "content_hash": content_hash, "archived": False},
            )
        link = self.link
        link.last_commit = self.report.commit
        link.last_sync_started_at = self.started
        link.last_synced_at = timezone.now()
        link.last_error = ""
        link.last_audit_id = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        if self.report.changed:
            audit_record(
                actor=self.actor,
                action=AuditAction.PROJECT_SYNCED,
                target=self.project,
                extra={"repository": display_url(link.repository), "branch": link.branch, **self.report.as_dict()},
            )
            link.last_audit_id = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        link.save(
            update_fields=["last_commit", "last_sync_started_at", "last_synced_at", "last_error", "last_audit_id"]
        )


@transaction.atomic
def sync_conflict_resolve(*, actor, conflict: SyncConflict, keep: str) -> SyncConflict:
    """Resolve a sync conflict (project admin): `keep="storyhub"` writes the story as
    StoryHub has it over git's file on the next sync; `keep="repository"` imports git's
    file (or archives the story, if git deleted it) now. Both versions stay on the row."""
    link = conflict.link
    require_project_role(actor, link.project, ProjectMember.Role.ADMIN)
    locked = SyncConflict.objects.select_for_update().get(pk=conflict.pk)
    if locked.state != SyncConflict.State.OPEN:
        raise ValidationError({"state": ["This conflict is already resolved."]})
    if keep == "storyhub":
        _agree_with_remote(locked)
        locked.state = SyncConflict.State.KEPT_STORYHUB
    elif keep == "repository":
        with write_context(source="sync"):
            _take_repository(locked, actor)
        locked.state = SyncConflict.State.TOOK_REPOSITORY
    else:
        raise ValidationError({"keep": ["Keep 'storyhub' or 'repository'."]})
    locked.resolved_at = timezone.now()
    locked.resolved_by = actor
    locked.save(update_fields=["state", "resolved_at", "resolved_by"])
    audit_record(
        actor=actor,
        action=AuditAction.SYNC_CONFLICT_RESOLVED,
        target=link.project,
        extra={"path": locked.path, "key": locked.key, "kept": keep, "conflict": locked.pk},
    )
    return locked


def _agree_with_remote(conflict: SyncConflict) -> None:
    """Record git's side as agreed, so StoryHub's differs and is written on the next sync."""
    if conflict.remote_deleted:
        SyncedFile.objects.filter(link=conflict.link, path=conflict.path).delete()
        return
    SyncedFile.objects.update_or_create(
        link=conflict.link,
        path=conflict.path,
        defaults={"story": conflict.story, "content_hash": conflict.remote_hash, "archived": False},
    )


def _take_repository(conflict: SyncConflict, actor) -> None:
    link = conflict.link
    if conflict.remote_deleted:
        base, _ = SyncedFile.objects.get_or_create(
            link=link, path=conflict.path, defaults={"story": conflict.story, "content_hash": ""}
        )
        if conflict.story is not None:
            archive_story(actor=actor, base=base)
        return
    data = conflict.remote_content.encode("utf-8")
    source = Source(path=conflict.path, data=data, source_path=conflict.path, repo=display_url(link.repository))
    result = import_sources([source], project=link.project, actor=actor, source="sync", continue_on_error=False)
    if not result.ok:
        file = result.files[0]
        raise ValidationError({"remote_content": [f"git's file cannot be imported: {file.reason}"]})
    story = Story.objects.filter(project=link.project, key=result.files[0].key).first()
    SyncedFile.objects.update_or_create(
        link=link, path=conflict.path, defaults={"story": story, "content_hash": sha256(data), "archived": False}
    )
