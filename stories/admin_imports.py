"""Admin pages of the import report and its conflicts (stories.importer): the import runs
of the projects a user can see, each run's per-file outcomes, and the parked conflicts
with both versions side by side and the three resolutions. Nothing here decides a
conflict: the resolution POST calls stories.importer.conflicts (the services the API
calls too), and a refusal comes back as a message with its reason.

Runs and conflicts are read-only models here (no add, change or delete); who sees them is
the project's viewer role, who resolves is the role the policy gives for changing a story
(stories.rules.PERMISSIONS["stories.change_story"]). A run or conflict of a project the
user cannot see is a 404, like one that does not exist."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from storyhub.admin_base import SERVICE_ERRORS, ProjectScopedMixin, ReadOnlyAdminMixin, error_text, has_role

from .exporter import story_markdown
from .importer.conflicts import import_conflict_keep_existing, import_conflict_parked_wins, import_conflict_rekey
from .models import ImportConflict, ImportFile, ImportOutcome, ImportRun, Story
from .rules import PERMISSIONS

# Resolving a conflict writes a story: the role the policy asks for changing one.
RESOLVE_ROLE = PERMISSIONS["stories.change_story"]
FILES_PER_PAGE = 200
OUTCOMES = list(ImportOutcome.choices)
State = ImportConflict.State


def counts_text(counts: dict) -> str:
    """ "3 created · 1 conflict · 2 failed": the outcomes a run had, in the outcomes' order."""
    parts = [f"{counts[value]} {label}" for value, label in OUTCOMES if counts.get(value)]
    return " · ".join(parts) or "no files"


def roots_text(roots: list) -> str:
    names = [str(r.get("name") or r.get("path") or "") for r in roots if isinstance(r, dict)]
    return ", ".join(n for n in names if n) or "—"


def mode_text(run: ImportRun) -> str:
    atomic = (run.options or {}).get("continue_on_error") is False
    return " · ".join(["dry run" if run.dry_run else "written", "atomic" if atomic else "file by file"])


class _VisibleDetailMixin:
    """A detail page of its own (not Django's change form): the object, or 404 when it is
    missing or in a project the user cannot see."""

    def visible_object(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such object.")
        return obj

    def detail_page(self, request, obj, template: str, title: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": title,
            "has_view_permission": True,
            **extra,
        }
        return TemplateResponse(request, template, context)


# --------------------------------------------------------------------------- import runs


class FileOutcomeFilter(admin.SimpleListFilter):
    """Runs with at least one file of the chosen outcome (e.g. the runs with failures)."""

    title = "files that are"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return OUTCOMES

    def queryset(self, request, queryset):
        if self.value() not in dict(OUTCOMES):
            return queryset
        files = ImportFile.objects.filter(run=OuterRef("pk"), outcome=self.value())
        return queryset.filter(Exists(files))


@admin.register(ImportRun)
class ImportRunAdmin(_VisibleDetailMixin, ReadOnlyAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    """The import report: every import of the projects the user can see."""

    list_display = ("run", "started_at", "project", "who", "source", "roots_shown", "counts_shown", "mode", "state")
    list_display_links = ("run",)
    list_filter = (("project", admin.RelatedOnlyFieldListFilter), FileOutcomeFilter, "source", "state", "dry_run")
    list_select_related = ("project",)
    search_fields = ("actor_repr", "repository")
    date_hierarchy = "started_at"

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    @admin.display(description="run", ordering="id")
    def run(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="who", ordering="actor_repr")
    def who(self, obj):
        return obj.actor_repr or "system"

    @admin.display(description="roots")
    def roots_shown(self, obj):
        return roots_text(obj.roots)

    @admin.display(description="files")
    def counts_shown(self, obj):
        return counts_text(obj.counts or {}) if obj.state != ImportRun.State.RUNNING else "running"

    @admin.display(description="mode")
    def mode(self, obj):
        return mode_text(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The run and its files (filter by outcome, 200 a page), in four queries."""
        run = self.visible_object(request, object_id)
        outcome = request.GET.get("outcome", "")
        files = ImportFile.objects.filter(run=run).select_related("story", "caused_by").order_by("id")
        if outcome in dict(OUTCOMES):
            files = files.filter(outcome=outcome)
        else:
            outcome = ""
        page = Paginator(files, FILES_PER_PAGE).get_page(request.GET.get("page"))
        rows = list(page.object_list)
        conflicts = dict(ImportConflict.objects.filter(file_id__in=[f.pk for f in rows]).values_list("file_id", "pk"))
        for row in rows:
            row.conflict_id = conflicts.get(row.pk)
        counts = run.counts or {}
        return self.detail_page(
            request,
            run,
            "admin/stories/importrun/detail.html",
            f"Import #{run.pk} into {run.project.name}",
            run=run,
            who=self.who(run),
            roots=roots_text(run.roots),
            mode=mode_text(run),
            counts_line=counts_text(counts),
            outcome_links=[(value, label, counts.get(value, 0)) for value, label in OUTCOMES if counts.get(value)],
            outcome=outcome,
            files_page=page,
            files=rows,
            open_conflicts=ImportConflict.objects.filter(run=run, state=State.OPEN).count(),
        )


# --------------------------------------------------------------------------- conflicts


class ConflictStateFilter(admin.SimpleListFilter):
    """Open conflicts unless asked otherwise: they are what needs someone."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [*State.choices, ("all", "all")]

    def value(self):
        return super().value() or State.OPEN.value

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value == "all" else queryset.filter(state=value)


@admin.register(ImportConflict)
class ImportConflictAdmin(_VisibleDetailMixin, ReadOnlyAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    """Parked files: the list, both versions side by side, and the resolutions (POST
    `<id>/resolve/`)."""

    list_display = (
        "key",
        "project",
        "kind_shown",
        "source_path",
        "story_source_path",
        "state",
        "created_at",
        "run_link",
    )
    list_display_links = ("key",)
    list_filter = (ConflictStateFilter, "kind", ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project",)
    search_fields = ("key", "source_path", "story_source_path")

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    @admin.display(description="reason", ordering="kind")
    def kind_shown(self, obj):
        return obj.get_kind_display()

    @admin.display(description="import")
    def run_link(self, obj):
        if obj.run_id is None:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:stories_importrun_change", args=[obj.run_id]), obj.run_id
        )

    def get_urls(self):
        resolve = self.admin_site.admin_view(self.resolve_view)
        return [path("<path:object_id>/resolve/", resolve, name="stories_importconflict_resolve"), *super().get_urls()]

    def can_resolve(self, request, conflict) -> bool:
        return conflict.state == State.OPEN and has_role(request, conflict.project_id, RESOLVE_ROLE)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Both versions side by side (the existing story as its file reads, the parked
        file's full text) and, for who may resolve an open conflict, the resolutions."""
        conflict = self.visible_object(request, object_id)
        story = conflict.story or Story.objects.filter(project=conflict.project, key=conflict.key).first()
        existing = story_markdown(story, reader=request.user)[1] if story is not None else ""
        return self.detail_page(
            request,
            conflict,
            "admin/stories/importconflict/detail.html",
            f"Import conflict: {conflict.key}",
            conflict=conflict,
            story=story,
            existing=existing,
            can_resolve=self.can_resolve(request, conflict),
            may_win=conflict.kind != ImportConflict.Kind.HEADING_MISMATCH,
            new_key=request.GET.get("new_key", "")[:64],
            resolved_story=conflict.resolved_story,
        )

    def resolve_view(self, request, object_id):
        """POST `resolution` = keep | win | rekey (with `new_key`): one service call; its
        refusal is shown as a message on the conflict's page. A GET goes to that page."""
        conflict = self.visible_object(request, object_id)
        page = reverse("admin:stories_importconflict_change", args=[conflict.pk])
        if request.method != "POST":
            return HttpResponseRedirect(page)
        return _resolve(request, conflict, page)


_RESOLUTIONS = {
    "keep": (import_conflict_keep_existing, "kept the existing story"),
    "win": (import_conflict_parked_wins, "the parked file is now the story"),
    "rekey": (import_conflict_rekey, "imported under the new key"),
}


def _resolve(request, conflict: ImportConflict, page: str):
    choice = request.POST.get("resolution", "")
    if choice not in _RESOLUTIONS:
        messages.error(request, "Choose a resolution: keep the existing story, the parked file wins, or a new key.")
        return HttpResponseRedirect(page)
    service, done = _RESOLUTIONS[choice]
    new_key = request.POST.get("new_key", "").strip()
    kwargs = {"new_key": new_key} if choice == "rekey" else {}
    try:
        resolved = service(actor=request.user, conflict=conflict, **kwargs)
    except SERVICE_ERRORS as exc:
        messages.error(request, f"{conflict.key} ({conflict.source_path}): not resolved. {error_text(exc)}")
        keep = "?" + urlencode({"new_key": new_key[:64]}) if choice == "rekey" and new_key else ""
        return HttpResponseRedirect(page + keep)
    story = resolved.resolved_story
    messages.success(
        request, f"{conflict.key} ({conflict.source_path}): {done}" + (f" ({story.key})." if story else ".")
    )
    return HttpResponseRedirect(page)
