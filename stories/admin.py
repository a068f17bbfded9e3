"""The admin for StoryHub's domain. Every save, delete and action calls a service in
stories.services, so the admin validates, audits and records history like the API.
See storyhub/admin_base.py for how refusals reach the form and how roles scope staff."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, RelatedFieldWidgetWrapper
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from sessions_app.permissions import search_fields_without_email
from storyhub.admin_base import (
    SERVICE_ERRORS,
    ProjectScopedMixin,
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    ServiceInlineMixin,
    changed_values,
    error_text,
    has_role,
    project_ids_with_role,
)

from . import admin_board, exporter, selectors, services
from . import fields as story_fields
from .admin_graph import project_graph
from .admin_reports import reports_page
from .admin_workflow import (
    JSON_HELP,
    PrettyJSONWidget,
    ProjectSettingsForm,
    StatusMovesForm,
    moves_change,
    moves_text,
    settings_fields,
    settings_summary,
    workflow_view,
)
from .models import (
    Backlog,
    Epic,
    Project,
    ProjectDependency,
    ProjectMember,
    Status,
    StatusCategory,
    StatusHistory,
    Story,
    StoryDependency,
)

Role = ProjectMember.Role


# --------------------------------------------------------------------------- form pieces


class LabelsField(forms.CharField):
    """Labels typed as "database, sqlite, schema" and stored as a list."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Comma-separated, e.g. database, sqlite, schema.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        if isinstance(value, list | tuple):
            return list(value)
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]


class ProjectLabelledChoiceField(forms.ModelChoiceField):
    """Statuses, backlogs and epics of several projects look alike; say whose they are."""

    def label_from_instance(self, obj):
        return f"{obj.project.slug} · {obj}"


def story_label(story) -> str:
    return f"{story.project.slug}:{story.key} — {story.title}"


def visible_stories(request):
    """Stories the user may see (stories.rules): what story pickers offer and accept, so
    a story of a hidden project is refused exactly like one that does not exist."""
    qs = Story.objects.select_related("project")
    return qs if request.user.is_superuser else qs.filter(project_id__in=selectors.visible_project_ids(request.user))


def only_visible_links(request, queryset):
    """Dependency rows whose two stories the user may both see; a link to a story of a
    hidden project is not shown, and so never changed or removed, in the admin."""
    if request.user.is_superuser:
        return queryset
    visible = selectors.visible_project_ids(request.user)
    return queryset.filter(story__project_id__in=visible, depends_on__project_id__in=visible)


class StoryRefChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return story_label(obj)


class KnownLabelsAutocompleteSelect(AutocompleteSelect):
    """An autocomplete whose selected labels can be handed to it (`known`, shared by the
    rows of one formset), so that a page with N dependency rows does not read the N
    selected stories one query at a time. Unknown values fall back to Django's lookup."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.known: dict[str, str] = {}

    def optgroups(self, name, value, attr=None):
        selected = {str(v) for v in value if str(v) not in self.choices.field.empty_values}
        if not selected or not selected <= self.known.keys():
            return super().optgroups(name, value, attr)
        options: list = []
        if not self.is_required and not self.allow_multiple_selected:
            options.append(self.create_option(name, "", "", False, 0))
        for pk in sorted(selected):
            options.append(self.create_option(name, pk, self.known[pk], True, len(options)))
        return [(None, options, 0)]


def blocked_override_fields(help_text: str) -> tuple[forms.BooleanField, forms.CharField]:
    """The blocked guard's override checkbox and its reason (story form and bulk action)."""
    return (
        forms.BooleanField(label="Override the blocked guard", required=False, help_text=help_text),
        forms.CharField(
            label="Reason for the override",
            required=False,
            widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
            help_text="Required with the override; kept in the status history and the audit log.",
        ),
    )


class VisibleValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """The distinct values among the rows this admin shows the user. Django's own filter
    takes them from the whole related table when the path crosses a relation
    (`status__slug`), which listed the statuses of projects the user cannot see."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        visible = model_admin.get_queryset(request).order_by(field_path)
        self.lookup_choices = visible.values_list(field_path, flat=True).distinct()


def titled(filter_class, title: str):
    """`filter_class` shown under `title` (a lookup across a relation is titled by the last
    field's name, e.g. "slug", which says little)."""

    class Titled(filter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


def _limit_to_projects(request, kwargs, db_field, role, related=("project",)):
    """Offer only rows of projects where the user has `role` (all for superusers)."""
    qs = db_field.related_model._default_manager.select_related(*related)
    if not request.user.is_superuser:
        lookup = "pk__in" if db_field.related_model is Project else "project__in"
        qs = qs.filter(**{lookup: project_ids_with_role(request, role)})
    kwargs["queryset"] = qs


# --------------------------------------------------------------------------- project and its inlines


class ProjectInlineMixin(ServiceInlineMixin):
    view_role = Role.VIEWER
    add_role = change_role = delete_role = Role.ADMIN
    creator_owns_parent = True

    def parent_project_id(self, parent):
        return None if parent is None else parent.pk


class MemberInline(ProjectInlineMixin, admin.TabularInline):
    model = ProjectMember
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "members"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def service_create(self, request, parent, form):
        return services.project_member_set(
            actor=request.user, project=parent, user=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )

    def service_update(self, request, parent, original, form):
        if original.user_id != form.cleaned_data["user"].pk:
            services.project_member_remove(actor=request.user, member=original)
        return services.project_member_set(
            actor=request.user, project=parent, user=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )

    def service_delete(self, request, parent, original):
        services.project_member_remove(actor=request.user, member=original)


class StatusInline(ProjectInlineMixin, admin.TabularInline):
    model = Status
    # Transitions are edited as a matrix on the project's Workflow page (admin_workflow).
    fields = ("slug", "name", "category", "order", "allowed_moves")
    readonly_fields = ("allowed_moves",)
    extra = 0
    verbose_name_plural = "workflow statuses"

    @admin.display(description="may move to")
    def allowed_moves(self, obj):
        return moves_text(obj) if obj.pk else "any status (set on the Workflow page)"

    def service_create(self, request, parent, form):
        data = dict(form.cleaned_data)
        return services.status_create(
            actor=request.user,
            project=parent,
            slug=data["slug"],
            name=data["name"],
            category=data["category"],
            order=data.get("order") or 0,
            allowed_transitions=data.get("allowed_transitions") or [],
        )

    def service_update(self, request, parent, original, form):
        return services.status_update(
            actor=request.user, status=original, data=changed_values(form, services.STATUS_FIELDS)
        )

    def service_delete(self, request, parent, original):
        services.status_delete(actor=request.user, status=original)


class BacklogInline(ProjectInlineMixin, admin.TabularInline):
    model = Backlog
    fields = ("slug", "name", "type", "status", "owner", "starts_on", "ends_on")
    autocomplete_fields = ("owner",)
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "project")

    def service_create(self, request, parent, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.BACKLOG_FIELDS}
        return services.backlog_create(actor=request.user, project=parent, **data)

    def service_update(self, request, parent, original, form):
        return services.backlog_update(
            actor=request.user, backlog=original, data=changed_values(form, services.BACKLOG_FIELDS)
        )

    def service_delete(self, request, parent, original):
        services.backlog_delete(actor=request.user, backlog=original)


@admin.register(Project)
class ProjectAdmin(ServiceAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    project_path = ""
    change_role = Role.ADMIN
    delete_role = Role.OWNER
    # A repository URL typed without a scheme means https (Django 6.0's default, today).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}, models.JSONField: {"widget": PrettyJSONWidget}}
    list_display = ("slug", "name", "status", "owner", "story_count", "member_count", "updated_at", "graph_link")
    list_filter = ("status",)
    search_fields = ("slug", "name", "description")
    ordering = ("slug",)
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    inlines = (MemberInline, StatusInline, BacklogInline)
    # The settings JSON is edited as one field per setting StoryHub reads (admin_workflow,
    # from the schema in stories.project_settings); read-only pages list them.
    form = ProjectSettingsForm
    base_fields = ("slug", "name", "description", "status", "owner", "repository_url", "submodule_path", "metadata")
    change_form_template = "admin/stories/project/change_form.html"

    def get_queryset(self, request):
        qs = (
            super()
            .get_queryset(request)
            .annotate(story_total=Count("stories", distinct=True), member_total=Count("members", distinct=True))
        )
        return self.scope_queryset(request, qs)

    def get_fields(self, request, obj=None):
        may_write = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        settings = settings_fields() if may_write else ["settings_list"]
        return [*self.base_fields, *settings, "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ("created_at", "updated_at", "settings_list")
        return ("slug", *fixed) if obj else fixed

    @admin.display(description="settings")
    def settings_list(self, obj):
        rows = settings_summary(obj) if obj else []
        return format_html_join("\n", "<div>{}: {}</div>", rows) or "—"

    def get_form(self, request, obj=None, **kwargs):
        return super().get_form(request, obj, help_texts=JSON_HELP, **kwargs)

    def has_add_permission(self, request, *args):
        # Anyone on the staff may start a project; they become its owner.
        return request.user.is_active and request.user.is_staff

    @admin.display(description="stories", ordering="story_total")
    def story_count(self, obj):
        return obj.story_total

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.display(description="graph")
    def graph_link(self, obj):
        return format_html(
            '<a href="{}">graph</a> · <a href="{}">board</a> · <a href="{}">ready</a>',
            reverse("admin:stories_project_graph", args=[obj.pk]),
            reverse("admin:stories_project_board", args=[obj.pk]),
            reverse("admin:stories_project_ready", args=[obj.pk]),
        )

    def service_create(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.PROJECT_FIELDS}
        return services.project_create(actor=request.user, **data)

    def service_update(self, request, original, form):
        data = changed_values(form, set(services.PROJECT_FIELDS) - {"slug"})
        if form.cleaned_data.get("settings", original.settings) != original.settings:
            data["settings"] = form.cleaned_data["settings"]
        return services.project_update(actor=request.user, project=original, data=data)

    def service_delete(self, request, obj):
        services.project_delete(actor=request.user, project=obj)

    def get_deleted_objects(self, objs, request):
        # Django's collector sees the workflow statuses protected by the project's own
        # stories and history; project_delete removes those first, in one transaction.
        to_delete, model_count, perms_needed, _protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, perms_needed, []

    # --- the dependency graph page
    def get_urls(self):
        extra = [
            path(
                "<path:object_id>/graph/",
                self.admin_site.admin_view(self.graph_view),
                name="stories_project_graph",
            ),
            path(
                "<path:object_id>/reports/",
                self.admin_site.admin_view(self.reports_view),
                name="stories_project_reports",
            ),
            path("<path:object_id>/board/", self.admin_site.admin_view(self.board_view), name="stories_project_board"),
            path("<path:object_id>/ready/", self.admin_site.admin_view(self.ready_view), name="stories_project_ready"),
            path(
                "<path:object_id>/story-choices/",
                self.admin_site.admin_view(self.story_choices_view),
                name="stories_project_story_choices",
            ),
            path(
                "<path:object_id>/workflow/",
                self.admin_site.admin_view(self.workflow_view),
                name="stories_project_workflow",
            ),
        ]
        return extra + super().get_urls()

    def _visible_project(self, request, object_id):
        """The project of a per-project page: 404 alike for missing and not visible."""
        project = self.get_object(request, object_id)
        if project is None or not self.has_view_permission(request, project):
            raise Http404("No such project.")
        return project

    def _project_page(self, request, project, template: str, title: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": project,
            "title": title,
            "has_view_permission": True,
            **extra,
        }
        return TemplateResponse(request, f"admin/stories/project/{template}", context)

    def ready_view(self, request, object_id):
        """What can start now, in the API's order (stories.admin_board.ready_queue)."""
        project = self._visible_project(request, object_id)
        return self._project_page(
            request,
            project,
            "ready.html",
            f"Ready to start in {project.name}",
            stories=admin_board.ready_queue(project),
        )

    def story_choices_view(self, request, object_id):
        """JSON for the story add form's script (storyhub/story_add.js): the statuses,
        backlogs and epics a new story of this project may take, as the form offers them
        (StoryAdminForm, project_choices). 404 like every project page; members only."""
        project = self._visible_project(request, object_id)
        if not has_role(request, project.pk, Role.MEMBER):
            raise PermissionDenied
        return JsonResponse(project_choices(project.pk))

    def board_view(self, request, object_id):
        """The project's board (stories.admin_board); POST is one move from it."""
        project = self._visible_project(request, object_id)
        if request.method == "POST":
            return admin_board.board_post_response(request, project)
        return self._project_page(
            request,
            project,
            "board.html",
            f"Board of {project.name}",
            board=admin_board.board_context(project, request.user, admin_board.board_filters(request.GET)),
            can_move=has_role(request, project.pk, Role.MEMBER),
        )

    def workflow_view(self, request, object_id):
        return workflow_view(self, request, object_id)

    def reports_view(self, request, object_id):
        project = self._visible_project(request, object_id)
        return self._project_page(
            request,
            project,
            "reports.html",
            f"Reports of {project.name}",
            **reports_page(project, request.GET, reader=request.user),
        )

    def graph_view(self, request, object_id):
        project = self._visible_project(request, object_id)
        return self._project_page(
            request,
            project,
            "graph.html",
            f"Dependency graph of {project.name}",
            graph=project_graph(project, reader=request.user),
        )


# --------------------------------------------------------------------------- story and its inlines


# The story fields whose choices belong to one project: the add form narrows them to the
# chosen project (on the server, StoryAdminForm; live in the page, storyhub/story_add.js
# reading project_choices through the project's story-choices URL).
PROJECT_CHOICE_FIELDS = ("status", "backlog", "epic")


def project_choices(project_id: int) -> dict[str, list[dict]]:
    """field → [{"id", "name"}] of a project's statuses, backlogs and epics, in the
    order and with the labels the story form shows them (three queries)."""
    models_of = {"status": Status, "backlog": Backlog, "epic": Epic}
    return {
        name: [
            {"id": pk, "name": label}
            for pk, label in models_of[name].objects.filter(project_id=project_id).values_list("pk", "name")
        ]
        for name in PROJECT_CHOICE_FIELDS
    }


class StoryAdminForm(forms.ModelForm):
    labels = LabelsField(required=False)
    status_notes = forms.CharField(
        label="Notes for the status change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept in the status history when the status changes.",
    )
    override_blocked, override_reason = blocked_override_fields(
        "Project admins: start or complete this story although a blocking story is not completed."
    )

    # The markdown body is kept exactly as written: no stripping, and a browser's CRLF
    # line breaks become the LF the files use (else every save would change the body).
    body = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 20, "cols": 100}))

    class Meta:
        model = Story
        # The admin narrows this to its fieldsets (get_form passes `fields`): the fields the
        # services assign, plus the project, the status and the version the page was read at.
        fields = ("project", "status", "version", *story_fields.WRITABLE)
        widgets = {"version": forms.HiddenInput, "metadata": PrettyJSONWidget}
        help_texts = {
            "metadata": (
                "A JSON object: the story file's front-matter keys StoryHub does not model (market, layer, "
                "emit_metadata, …), kept as written and written back on export. StoryHub reads nothing from it."
            )
        }

    def clean_body(self):
        return self.cleaned_data["body"].replace("\r\n", "\n")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in ("status", "backlog", "epic"):
                if name in self.fields:
                    field = self.fields[name]
                    field.queryset = field.queryset.filter(project_id=self.instance.project_id)
                    field.label_from_instance = lambda obj: obj.name
            if "status" in self.fields and self.instance.status_id:
                # Only the moves the workflow allows from the current status (and staying).
                current = self.instance.status
                allowed = [current.pk, *(s.pk for s in self.fields["status"].queryset if current.allows(s))]
                self.fields["status"].queryset = self.fields["status"].queryset.filter(pk__in=allowed)
        elif "status" in self.fields:
            self.fields["status"].required = False
            self.fields["status"].help_text = "Leave empty for the project's default status."
            # Add form opened for a project (?project=<id>, or the project posted): offer
            # only that project's statuses, backlogs and epics.
            chosen = self.data.get("project") or self.initial.get("project")
            if str(chosen or "").isdigit():
                for name in PROJECT_CHOICE_FIELDS:
                    if name in self.fields:
                        field = self.fields[name]
                        field.queryset = field.queryset.filter(project_id=int(chosen))
                        field.label_from_instance = lambda obj: obj.name


class DependencyInlineMixin(ServiceInlineMixin):
    view_role = Role.VIEWER
    add_role = change_role = delete_role = Role.MEMBER
    model = StoryDependency
    extra = 0
    formfield_overrides = {models.TextField: {"widget": forms.TextInput(attrs={"size": 60})}}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("story", "depends_on"):
            kwargs["form_class"] = StoryRefChoiceField
            kwargs["queryset"] = visible_stories(request)
            if db_field.name in self.autocomplete_fields:
                kwargs["widget"] = KnownLabelsAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        (name,) = self.autocomplete_fields

        class LabelsFromRows(formset):
            def _construct_form(self, i, **form_kwargs):
                form = super()._construct_form(i, **form_kwargs)
                # Existing rows come with their stories (the inline's select_related).
                if form.instance.pk is not None and name in form.fields:
                    widget = form.fields[name].widget
                    inner = getattr(widget, "widget", widget)
                    if isinstance(inner, KnownLabelsAutocompleteSelect):
                        target = getattr(form.instance, name)
                        inner.known[str(target.pk)] = story_label(target)
                return form

        LabelsFromRows.__name__ = formset.__name__
        return LabelsFromRows

    def _link(self, parent, form):
        """(story, depends_on) of the link a row describes."""
        raise NotImplementedError

    def service_create(self, request, parent, form):
        story, depends_on = self._link(parent, form)
        return services.dependency_add(
            actor=request.user,
            story=story,
            depends_on=depends_on,
            type=form.cleaned_data["type"],
            description=form.cleaned_data.get("description", ""),
        )

    def service_update(self, request, parent, original, form):
        # There is no "edit a link" service: the change is a removal and a new link.
        services.dependency_remove(actor=request.user, dependency=original)
        return self.service_create(request, parent, form)

    def service_delete(self, request, parent, original):
        services.dependency_remove(actor=request.user, dependency=original)


class DependsOnInline(DependencyInlineMixin, admin.TabularInline):
    fk_name = "story"
    fields = ("depends_on", "type", "description")
    autocomplete_fields = ("depends_on",)
    verbose_name = "dependency"
    verbose_name_plural = "depends on (must finish first)"

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("depends_on__project", "story__project")
        return only_visible_links(request, qs)

    def _link(self, parent, form):
        return parent, form.cleaned_data["depends_on"]


class DependentsInline(DependencyInlineMixin, admin.TabularInline):
    fk_name = "depends_on"
    fields = ("story", "type", "description")
    autocomplete_fields = ("story",)
    verbose_name = "dependent story"
    verbose_name_plural = "depended on by (waiting for this story)"

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("story__project", "depends_on__project")
        return only_visible_links(request, qs)

    def _link(self, parent, form):
        return form.cleaned_data["story"], parent


class StatusHistoryInline(admin.TabularInline):
    model = StatusHistory
    fields = ("changed_at_full", "old_status_name", "new_status_name", "changed_by", "notes")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "status history"
    ordering = ("-changed_at", "-id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("old_status", "new_status", "changed_by")

    @admin.display(description="changed at")
    def changed_at_full(self, obj):
        return obj.changed_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()

    @admin.display(description="from")
    def old_status_name(self, obj):
        return obj.old_status.name if obj.old_status_id else "—"

    @admin.display(description="to")
    def new_status_name(self, obj):
        return obj.new_status.name

    def has_view_permission(self, request, obj=None):
        return has_role(request, None if obj is None else obj.project_id, Role.VIEWER)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TransitionForm(forms.Form):
    status = forms.ChoiceField(label="New status")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    override_blocked, reason = blocked_override_fields(
        "Project admins: move blocked stories too (their blockers are not completed)."
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("override_blocked") and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "Give a reason for overriding the blocked guard.")
        return cleaned

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        # Nothing preselected: one careless click must not send a selection anywhere.
        self.fields["status"].choices = [("", "— choose a status —"), *choices]


class MoveForm(forms.Form):
    backlog = forms.ChoiceField(label="Backlog", required=False)

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backlog"].choices = [("", "— no backlog —"), *choices]


@admin.register(Story)
class StoryAdmin(ServiceAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    form = StoryAdminForm
    list_display = (
        "key",
        "title",
        "project_slug",
        "status_name",
        "readiness",
        "priority_name",
        "backlog_slug",
        "epic_slug",
        "owner",
    )  # Not the version (it only matters to a form that saves) nor updated_at (the dashboard lists
    # the latest changes): with the ready / blocked column they cost the list its last column at 1,440 px.
    list_display_links = ("key", "title")
    list_filter = (
        ("project", admin.RelatedOnlyFieldListFilter),
        ("status__category", titled(admin.ChoicesFieldListFilter, "status category")),
        ("status__slug", titled(VisibleValuesFieldListFilter, "status")),
        admin_board.ReadinessListFilter,
        "priority",
    )
    search_fields = ("key", "title", "project__slug", "owner", "branch_name")
    ordering = ("project__slug", "key")
    list_select_related = ("project", "status", "backlog", "epic")
    list_per_page = 100
    autocomplete_fields = ("project",)
    inlines = (DependsOnInline, DependentsInline, StatusHistoryInline)
    actions = ("transition_selected", "move_to_backlog", "export_markdown_zip")
    change_form_template = "admin/stories/story/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Links to or from stories the user cannot see are left out of the inlines; say
        # how many, as the placeholder (README "Visibility").
        extra_context = {
            **(extra_context or {}),
            "hidden_links": self.hidden_link_count(request, object_id),
            **self.block_links_panel(request, object_id),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def block_links_panel(self, request, object_id) -> dict:
        """The read-only "Blocked by" / "Blocks" panel (stories.selectors.story_block_links:
        what the user may see, hidden links as placeholders) and the graph centred here."""
        story = self.get_object(request, object_id) if str(object_id).isdigit() else None
        if story is None or not self.has_view_permission(request, story):
            return {}
        links = selectors.story_block_links(story=story, reader=request.user)
        for side in links.values():
            for row in side:
                if not row["hidden"]:
                    row["url"] = reverse("admin:stories_story_change", args=[row["id"]])
                    row["category_label"] = StatusCategory(row["category"]).label
        graph = reverse("admin:stories_project_graph", args=[story.project_id])
        return {
            "block_links": links,
            "block_sides": [
                ("blocked_by", links["blocked_by"], "Blocked by (must finish first)", "No blocker."),
                ("blocks", links["blocks"], "Blocks (waiting for this story)", "No story waits for this one."),
            ],
            "block_waiting": sum(1 for row in links["blocked_by"] if row["open"]),
            "graph_focus_url": f"{graph}?{urlencode({'focus': story.key})}",
        }

    def hidden_link_count(self, request, object_id) -> int:
        if request.user.is_superuser or not str(object_id).isdigit():
            return 0
        links = StoryDependency.objects.filter(models.Q(story_id=object_id) | models.Q(depends_on_id=object_id))
        return links.count() - only_visible_links(request, links).count()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        # The story and its link inlines are saved in one transaction, which locks the
        # story's row and then writes links: the dependency-graph lock comes first (the
        # lock order in stories.services).
        with transaction.atomic():
            services.lock_blocks_graph()
            return super().changeform_view(request, object_id, form_url, extra_context)

    # --- list
    def get_queryset(self, request):
        return admin_board.with_readiness(self.scope_queryset(request, super().get_queryset(request)))

    @admin.display(description="ready / blocked")
    def readiness(self, obj):
        return admin_board.readiness_label(obj) or "—"

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.select_related("project"), may_have_duplicates

    def autocomplete_label(self, obj) -> str:
        """Autocomplete text (storyhub.admin_site): the same key may exist in several projects."""
        return f"{obj.project.slug}:{obj.key} — {obj.title}"

    @admin.display(description="project", ordering="project__slug")
    def project_slug(self, obj):
        return obj.project.slug

    @admin.display(description="status", ordering="status__order")
    def status_name(self, obj):
        return obj.status.name

    @admin.display(description="priority", ordering="priority")
    def priority_name(self, obj):
        return obj.get_priority_display()

    @admin.display(description="backlog", ordering="backlog__slug")
    def backlog_slug(self, obj):
        return obj.backlog.slug if obj.backlog_id else "—"

    @admin.display(description="epic", ordering="epic__slug")
    def epic_slug(self, obj):
        return obj.epic.slug if obj.epic_id else "—"

    # --- form
    def get_fieldsets(self, request, obj=None):
        main = ["project", "key", "title", "status", "status_notes", "priority"]
        if obj is not None:
            main[5:5] = ["override_blocked", "override_reason"]
            main.append("version")
        return [
            (None, {"fields": main}),
            (
                "Planning",
                {
                    "fields": [
                        "backlog",
                        "epic",
                        "estimate",
                        "owner",
                        "author",
                        "labels",
                        "branch_name",
                        "file_path",
                        "created",
                        "last_updated",
                    ]
                },
            ),
            ("Content", {"fields": ["body", "metadata"]}),
            (
                "Record",
                {
                    "fields": [
                        "points_min",
                        "points_max",
                        "rank",
                        "source_repo",
                        "source_path",
                        "source_hash",
                        "created_at",
                        "updated_at",
                    ],
                    "classes": ["collapse"],
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        fixed = (
            "points_min",
            "points_max",
            "rank",
            "source_repo",
            "source_path",
            "source_hash",
            "created_at",
            "updated_at",
        )
        return ("project", *fixed) if obj else fixed

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("status", "backlog", "epic") and isinstance(field.widget, RelatedFieldWidgetWrapper):
            # Pick from the workflow here; editing or deleting it belongs on the project.
            field.widget.can_change_related = field.widget.can_delete_related = False
        return field

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            _limit_to_projects(request, kwargs, db_field, Role.MEMBER, related=())
        elif db_field.name in ("status", "backlog", "epic"):
            _limit_to_projects(request, kwargs, db_field, Role.MEMBER)
            kwargs["form_class"] = ProjectLabelledChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_create(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.STORY_FIELDS}
        return services.story_create(
            actor=request.user,
            project=form.cleaned_data["project"],
            key=data.pop("key"),
            title=data.pop("title"),
            status=form.cleaned_data.get("status"),
            notes=form.cleaned_data.get("status_notes", ""),
            **data,
        )

    def service_update(self, request, original, form):
        # Only what the user changed; the version check guards against stale pages.
        data = changed_values(form, [*services.STORY_FIELDS, "status"])
        return services.story_update(
            actor=request.user,
            story=original,
            data=data,
            expected_version=form.cleaned_data["version"],
            notes=form.cleaned_data.get("status_notes", ""),
            override_blocked=form.cleaned_data.get("override_blocked", False),
            override_reason=form.cleaned_data.get("override_reason", ""),
        )

    def service_delete(self, request, obj):
        services.story_delete(actor=request.user, story=obj)

    # --- actions
    def _per_story(self, request, queryset, verb: str, write) -> None:
        """Run `write(story)` for each selected story in its own service call; report
        what changed and, per story, why anything was refused."""
        changed, unchanged, refused = [], [], []
        for story in queryset.select_related("project", "status", "backlog"):
            before = story.version
            ref = f"{story.project.slug}:{story.key}"
            try:
                result = write(story)
            except SERVICE_ERRORS as exc:
                refused.append(f"{ref}: {error_text(exc)}")
                continue
            (changed if result.version != before else unchanged).append(ref)
        if changed:
            count = len(changed)
            listed = ", ".join(changed)
            self.message_user(
                request, f"{verb} {count} stor{'y' if count == 1 else 'ies'}: {listed}.", messages.SUCCESS
            )
        if unchanged:
            self.message_user(request, f"Already there, nothing to change: {', '.join(unchanged)}.", messages.INFO)
        for line in refused:
            self.message_user(request, f"Not changed: {line}", messages.ERROR)

    def _action_page(self, request, queryset, *, action: str, title: str, form, button: str):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "stories": queryset.select_related("project", "status"),
            "action": action,
            "button": button,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/stories/story/action_form.html", context)

    @admin.action(description="Change the status of the selected stories…", permissions=["change"])
    def transition_selected(self, request, queryset):
        statuses = Status.objects.filter(project__in=queryset.values("project")).order_by("order", "slug")
        choices, seen = [], set()
        for status in statuses:
            if status.slug not in seen:
                seen.add(status.slug)
                choices.append((status.slug, status.name))
        form = TransitionForm(request.POST if "apply" in request.POST else None, choices=choices)
        if form.is_valid():
            slug, notes = form.cleaned_data["status"], form.cleaned_data["notes"]
            override = {
                "override_blocked": form.cleaned_data["override_blocked"],
                "override_reason": form.cleaned_data["reason"],
            }
            self._per_story(
                request,
                queryset,
                f"Moved to '{slug}':",
                lambda story: services.story_transition(
                    actor=request.user, story=story, status=slug, notes=notes, **override
                ),
            )
            return None
        return self._action_page(
            request,
            queryset,
            action="transition_selected",
            title="Change the status of these stories",
            form=form,
            button="Change status",
        )

    @admin.action(description="Move the selected stories to a backlog…", permissions=["change"])
    def move_to_backlog(self, request, queryset):
        backlogs = Backlog.objects.filter(project__in=queryset.values("project")).order_by("slug")
        choices = sorted({(b.slug, f"{b.slug} ({b.name})") for b in backlogs})
        form = MoveForm(request.POST if "apply" in request.POST else None, choices=choices)
        if form.is_valid():
            slug = form.cleaned_data["backlog"]
            by_project = {(b.project_id, b.slug): b for b in backlogs}

            def move(story):
                backlog = by_project.get((story.project_id, slug)) if slug else None
                if slug and backlog is None:
                    raise PermissionDenied(f"project {story.project.slug} has no backlog '{slug}'")
                return services.story_move(actor=request.user, story=story, backlog=backlog)

            self._per_story(request, queryset, f"Moved to backlog '{slug or 'none'}':", move)
            return None
        return self._action_page(
            request,
            queryset,
            action="move_to_backlog",
            title="Move these stories to a backlog",
            form=form,
            button="Move",
        )

    @admin.action(description="Export the selected stories as a markdown zip", permissions=["view"])
    def export_markdown_zip(self, request, queryset):
        projects = list(Project.objects.filter(pk__in=queryset.values("project")))
        if len(projects) != 1:
            self.message_user(request, "Select the stories of one project to export them.", messages.ERROR)
            return None
        project = projects[0]
        response = StreamingHttpResponse(
            exporter.stream_markdown(project, queryset.filter(project=project), reader=request.user),
            content_type="application/zip",
        )
        response["Content-Disposition"] = f'attachment; filename="{exporter.export_filename(project, "markdown")}"'
        return response


# --------------------------------------------------------------------------- the other models


class ProjectFieldMixin:
    """`project` is chosen on add (among projects where the user has `add_role`) and
    fixed afterwards."""

    def get_readonly_fields(self, request, obj=None):
        base = tuple(super().get_readonly_fields(request, obj))
        return ("project", *base) if obj else base

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            _limit_to_projects(request, kwargs, db_field, self.add_role, related=())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Backlog)
class BacklogAdmin(ServiceAdminMixin, ProjectFieldMixin, ProjectScopedMixin, admin.ModelAdmin):
    add_role = change_role = delete_role = Role.ADMIN
    list_display = ("slug", "name", "project", "type", "status", "owner", "story_count")
    list_filter = ("type", "status", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("slug", "name", "project__slug")
    ordering = ("project__slug", "slug")
    list_select_related = ("project", "owner")
    autocomplete_fields = ("project", "owner")

    def get_queryset(self, request):
        qs = super().get_queryset(request).annotate(story_total=Count("stories"))
        return self.scope_queryset(request, qs)

    @admin.display(description="stories", ordering="story_total")
    def story_count(self, obj):
        return obj.story_total

    def service_create(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.BACKLOG_FIELDS}
        return services.backlog_create(actor=request.user, project=form.cleaned_data["project"], **data)

    def service_update(self, request, original, form):
        return services.backlog_update(
            actor=request.user, backlog=original, data=changed_values(form, services.BACKLOG_FIELDS)
        )

    def service_delete(self, request, obj):
        services.backlog_delete(actor=request.user, backlog=obj)


@admin.register(Status)
class StatusAdmin(ServiceAdminMixin, ProjectFieldMixin, ProjectScopedMixin, admin.ModelAdmin):
    add_role = change_role = delete_role = Role.ADMIN
    list_display = ("slug", "name", "project", "category", "order", "allowed_moves")
    list_filter = ("category", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("slug", "name", "project__slug")
    ordering = ("project__slug", "order", "slug")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)

    # The moves as checkboxes of the project's statuses, "any move allowed" its own box
    # (admin_workflow.StatusMovesForm), never the raw JSON list where [] meant "any".
    form = StatusMovesForm

    @admin.display(description="may move to")
    def allowed_moves(self, obj):
        return moves_text(obj)

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "allowed_moves"]
        may_write = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if may_write:
            return fields
        return [f for f in fields if f not in ("any_move", "moves_to")] + ["allowed_moves"]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "allowed_moves")

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def service_create(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.STATUS_FIELDS}
        return services.status_create(actor=request.user, project=form.cleaned_data["project"], **data)

    def service_update(self, request, original, form):
        data = {**changed_values(form, services.STATUS_FIELDS), **moves_change(form, original)}
        return services.status_update(actor=request.user, status=original, data=data)

    def service_delete(self, request, obj):
        services.status_delete(actor=request.user, status=obj)


@admin.register(Epic)
class EpicAdmin(ServiceAdminMixin, ProjectFieldMixin, ProjectScopedMixin, admin.ModelAdmin):
    delete_role = Role.ADMIN
    list_display = ("slug", "name", "project", "story_count", "updated_at")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("slug", "name", "project__slug")
    ordering = ("project__slug", "slug")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)

    def get_queryset(self, request):
        qs = super().get_queryset(request).annotate(story_total=Count("stories"))
        return self.scope_queryset(request, qs)

    @admin.display(description="stories", ordering="story_total")
    def story_count(self, obj):
        return obj.story_total

    def service_create(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.EPIC_FIELDS}
        return services.epic_create(actor=request.user, project=form.cleaned_data["project"], **data)

    def service_update(self, request, original, form):
        return services.epic_update(actor=request.user, epic=original, data=changed_values(form, services.EPIC_FIELDS))

    def service_delete(self, request, obj):
        services.epic_delete(actor=request.user, epic=obj)


@admin.register(ProjectMember)
class ProjectMemberAdmin(ServiceAdminMixin, ProjectFieldMixin, ProjectScopedMixin, admin.ModelAdmin):
    add_role = change_role = delete_role = Role.ADMIN
    list_display = ("user", "project", "role", "created_at")
    list_filter = ("role", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__email", "project__slug")
    ordering = ("project__slug", "user__username")
    list_select_related = ("project", "user")
    autocomplete_fields = ("project", "user")

    def get_search_fields(self, request):
        # Matching on emails would reveal them to staff who may not browse users.
        return search_fields_without_email(request.user, super().get_search_fields(request))

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return ("project", "user") if obj else ()

    def service_create(self, request, form):
        return services.project_member_set(
            actor=request.user,
            project=form.cleaned_data["project"],
            user=form.cleaned_data["user"],
            role=form.cleaned_data["role"],
        )

    def service_update(self, request, original, form):
        return services.project_member_set(
            actor=request.user, project=original.project, user=original.user, role=form.cleaned_data["role"]
        )

    def service_delete(self, request, obj):
        services.project_member_remove(actor=request.user, member=obj)


def _no_self_link_form(model, source: str, target: str, message: str):
    """A form that says in words what the model's no-self-link constraint would say in
    its name (the service refuses the same thing)."""

    class NoSelfLinkForm(forms.ModelForm):
        class Meta:
            fields = (source, target, "type", "description")

        def clean(self):
            cleaned = super().clean()
            chosen = cleaned.get(target)
            origin = cleaned.get(source, getattr(self.instance, source, None) if self.instance.pk else None)
            if chosen is not None and origin is not None and chosen.pk == origin.pk:
                self.add_error(target, message)
            return cleaned

    NoSelfLinkForm.Meta.model = model
    return NoSelfLinkForm


@admin.register(StoryDependency)
class StoryDependencyAdmin(ServiceAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    form = _no_self_link_form(StoryDependency, "story", "depends_on", "A story cannot depend on itself.")
    project_path = "story__project"
    list_display = ("story_ref", "depends_on_ref", "type", "cross_project", "created_at")
    list_filter = ("type", ("story__project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("story__key", "depends_on__key", "story__project__slug", "depends_on__project__slug")
    ordering = ("story__project__slug", "story__key", "depends_on__key")
    list_select_related = ("story__project", "depends_on__project")
    autocomplete_fields = ("story", "depends_on")
    fields = ("story", "depends_on", "type", "description")

    def get_queryset(self, request):
        return only_visible_links(request, self.scope_queryset(request, super().get_queryset(request)))

    def get_readonly_fields(self, request, obj=None):
        return ("story",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("story", "depends_on"):
            kwargs["form_class"] = StoryRefChoiceField
            kwargs["queryset"] = visible_stories(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="story", ordering="story__key")
    def story_ref(self, obj):
        return f"{obj.story.project.slug}:{obj.story.key}"

    @admin.display(description="depends on", ordering="depends_on__key")
    def depends_on_ref(self, obj):
        return f"{obj.depends_on.project.slug}:{obj.depends_on.key}"

    @admin.display(description="cross-project", boolean=True)
    def cross_project(self, obj):
        return obj.story.project_id != obj.depends_on.project_id

    def _add(self, request, story, form):
        return services.dependency_add(
            actor=request.user,
            story=story,
            depends_on=form.cleaned_data["depends_on"],
            type=form.cleaned_data["type"],
            description=form.cleaned_data.get("description", ""),
        )

    def service_create(self, request, form):
        return self._add(request, form.cleaned_data["story"], form)

    def service_update(self, request, original, form):
        # No "edit a link" service: a removal and a new link, in one transaction.
        services.dependency_remove(actor=request.user, dependency=original)
        return self._add(request, original.story, form)

    def service_delete(self, request, obj):
        services.dependency_remove(actor=request.user, dependency=obj)


@admin.register(ProjectDependency)
class ProjectDependencyAdmin(ServiceAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    form = _no_self_link_form(ProjectDependency, "from_project", "to_project", "A project cannot depend on itself.")
    project_path = "from_project"
    add_role = change_role = delete_role = Role.ADMIN
    list_display = ("from_project", "to_project", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("from_project__slug", "to_project__slug", "description")
    ordering = ("from_project__slug", "to_project__slug")
    list_select_related = ("from_project", "to_project")
    autocomplete_fields = ("from_project", "to_project")
    fields = ("from_project", "to_project", "type", "description")

    def get_queryset(self, request):
        qs = self.scope_queryset(request, super().get_queryset(request))
        if request.user.is_superuser:
            return qs
        # Both ends visible, as on the API: a hidden project is not named here either.
        return qs.filter(to_project_id__in=selectors.visible_project_ids(request.user))

    def get_readonly_fields(self, request, obj=None):
        return ("from_project",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Only projects the user sees: a hidden one is refused like one that does not exist.
        if db_field.name == "from_project":
            _limit_to_projects(request, kwargs, db_field, Role.ADMIN, related=())
        elif db_field.name == "to_project":
            _limit_to_projects(request, kwargs, db_field, Role.VIEWER, related=())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _add(self, request, from_project, form):
        return services.project_dependency_add(
            actor=request.user,
            from_project=from_project,
            to_project=form.cleaned_data["to_project"],
            type=form.cleaned_data["type"],
            description=form.cleaned_data.get("description", ""),
        )

    def service_create(self, request, form):
        return self._add(request, form.cleaned_data["from_project"], form)

    def service_update(self, request, original, form):
        services.project_dependency_remove(actor=request.user, link=original)
        return self._add(request, original.from_project, form)

    def service_delete(self, request, obj):
        services.project_dependency_remove(actor=request.user, link=obj)


@admin.register(StatusHistory)
class StatusHistoryAdmin(ReadOnlyAdminMixin, ProjectScopedMixin, admin.ModelAdmin):
    project_path = "story__project"
    list_display = ("changed_at", "story_ref", "old_status", "new_status", "changed_by", "notes")
    list_filter = (
        ("new_status__slug", titled(VisibleValuesFieldListFilter, "new status")),
        "changed_at",
        ("story__project", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("story__key", "story__project__slug", "notes", "changed_by__username")
    ordering = ("-changed_at", "-id")
    list_select_related = ("story__project", "old_status", "new_status", "changed_by")
    date_hierarchy = "changed_at"

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    @admin.display(description="story", ordering="story__key")
    def story_ref(self, obj):
        url = reverse("admin:stories_story_change", args=[obj.story_id])
        return format_html('<a href="{}">{}:{}</a>', url, obj.story.project.slug, obj.story.key)


# Registered by importing them: the git sync pages, the import report and its conflicts.
from . import admin_imports, admin_sync  # noqa: E402,F401
