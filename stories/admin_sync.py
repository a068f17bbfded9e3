"""Admin pages of the git sync (stories.sync): a project's link to its repository (project
admins), and the sync conflicts to resolve. Writes go through stories.sync's services;
stories.sync.engine (and with it dulwich) is imported only when a sync or a resolution
runs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from storyhub.admin_base import ProjectScopedMixin, ReadOnlyAdminMixin, ServiceAdminMixin, error_text

from .models import ProjectMember, SyncConflict, SyncLink
from .sync.links import LINK_FIELDS, sync_link_remove, sync_link_set

Role = ProjectMember.Role


@admin.register(SyncLink)
class SyncLinkAdmin(ServiceAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    view_role = add_role = change_role = delete_role = Role.ADMIN
    list_display = ("project", "repository_shown", "branch", "folders", "enabled", "last_synced_at", "last_error")
    list_select_related = ("project",)
    fields = ("project", *LINK_FIELDS, "last_commit", "last_synced_at", "last_error")
    readonly_fields = ("last_commit", "last_synced_at", "last_error")
    autocomplete_fields = ("project",)
    actions = ["sync_now"]

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        base = tuple(super().get_readonly_fields(request, obj))
        return ("project", *base) if obj else base

    @admin.display(description="repository")
    def repository_shown(self, obj):
        from .sync.gitrepo import display_url

        return display_url(obj.repository)

    def service_create(self, request, form):
        data = {k: form.cleaned_data.get(k) for k in LINK_FIELDS if k in form.cleaned_data}
        return sync_link_set(actor=request.user, project=form.cleaned_data["project"], data=data)

    def service_update(self, request, original, form):
        data = {k: form.cleaned_data[k] for k in form.changed_data if k in LINK_FIELDS}
        return sync_link_set(actor=request.user, project=original.project, data=data)

    def service_delete(self, request, obj):
        sync_link_remove(actor=request.user, project=obj.project)

    @admin.action(description="Sync now (pull, then push)")
    def sync_now(self, request, queryset):
        from .sync.engine import sync_project
        from .sync.gitrepo import GitSyncError

        for link in queryset.select_related("project"):
            try:
                report = sync_project(actor=request.user, project=link.project)
            except (GitSyncError, Exception) as exc:  # noqa: BLE001 - shown as one line per project
                messages.error(request, f"{link.project.slug}: {error_text(exc)}")
                continue
            messages.success(request, report.summary())


@admin.register(SyncConflict)
class SyncConflictAdmin(ReadOnlyAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    """Both versions side by side; resolved only by the two actions, never by editing."""

    project_path = "link__project"
    view_role = Role.ADMIN
    list_display = ("key", "path", "project", "state", "created_at", "resolved_by")
    list_filter = ("state",)
    list_select_related = ("link__project", "resolved_by")
    search_fields = ("key", "path")
    fields = (
        "project",
        "key",
        "path",
        "state",
        "remote_commit",
        "remote_deleted",
        "storyhub_version",
        "repository_version",
        "created_at",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields
    actions = ["keep_storyhub", "take_repository"]

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.is_superuser and not self._admin_anywhere(request):
            return {}
        return actions

    def _admin_anywhere(self, request) -> bool:
        from storyhub.admin_base import project_ids_with_role

        return bool(project_ids_with_role(request, Role.ADMIN))

    @admin.display(description="project")
    def project(self, obj):
        return obj.link.project

    @admin.display(description="StoryHub's version")
    def storyhub_version(self, obj):
        return format_html("<pre>{}</pre>", obj.local_content)

    @admin.display(description="the repository's version")
    def repository_version(self, obj):
        return format_html("<pre>{}</pre>", "(deleted in git)" if obj.remote_deleted else obj.remote_content)

    def _resolve(self, request, queryset, keep: str) -> None:
        from .sync.engine import sync_conflict_resolve

        for conflict in queryset.select_related("link__project", "story"):
            try:
                sync_conflict_resolve(actor=request.user, conflict=conflict, keep=keep)
            except Exception as exc:  # noqa: BLE001 - shown as one line per conflict
                messages.error(request, f"{conflict}: {error_text(exc)}")
            else:
                messages.success(request, f"{conflict.key or conflict.path}: resolved; the next sync writes it.")

    @admin.action(description="Resolve: keep StoryHub's version (written to git on the next sync)")
    def keep_storyhub(self, request, queryset):
        self._resolve(request, queryset, "storyhub")

    @admin.action(description="Resolve: take the repository's version (imported now)")
    def take_repository(self, request, queryset):
        self._resolve(request, queryset, "repository")
