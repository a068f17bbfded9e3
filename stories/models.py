"""StoryHub's domain: projects, backlogs, workflows, epics, stories and their graph.

Writes go through ``stories.services``; these models only describe data and the
constraints the database itself enforces.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from storyhub.validators import validate_json_value


class StatusWriteError(Exception):
    """Raised when code tries to change a story's status around the service layer."""


def _choices_check(field: str, choices, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": [value for value, _ in choices]}), name=name)


def version_field() -> models.PositiveIntegerField:
    """Optimistic-concurrency version, bumped by every service write (the API's ETag and
    `version`). db_default too, so raw inserts (COPY in bench, SQL) need not name it."""
    return models.PositiveIntegerField(default=1, db_default=1)


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class ProjectStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"
    MAINTENANCE = "maintenance", "Maintenance"


class Project(TimestampedModel):
    Status = ProjectStatus

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    repository_url = models.URLField(max_length=500, blank=True, default="")
    submodule_path = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_projects"
    )
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_json_value])
    settings = models.JSONField(default=dict, blank=True, validators=[validate_json_value])
    version = version_field()

    class Meta:
        db_table = "projects"
        ordering = ["slug"]
        constraints = [_choices_check("status", ProjectStatus.choices, "projects_status_valid")]

    def __str__(self) -> str:
        return self.slug


class BacklogType(models.TextChoices):
    STANDARD = "standard", "Standard"
    SPRINT = "sprint", "Sprint"
    TEAM = "team", "Team"
    ARCHIVE = "archive", "Archive"
    PERSONAL = "personal", "Personal"


class BacklogStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"
    TEMPLATE = "template", "Template"


class Backlog(TimestampedModel):
    Type = BacklogType
    Status = BacklogStatus

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="backlogs")
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.STANDARD)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_backlogs"
    )
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_json_value])
    settings = models.JSONField(default=dict, blank=True, validators=[validate_json_value])
    version = version_field()

    class Meta:
        db_table = "backlogs"
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="backlogs_unique_slug_per_project"),
            _choices_check("type", BacklogType.choices, "backlogs_type_valid"),
            _choices_check("status", BacklogStatus.choices, "backlogs_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id and self.project.slug}/{self.slug}"


class StatusCategory(models.TextChoices):
    BACKLOG = "backlog", "Backlog"
    UNSTARTED = "unstarted", "Unstarted"
    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Status(models.Model):
    """One step of a project's workflow."""

    Category = StatusCategory

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="statuses")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=20, choices=Category.choices)
    order = models.PositiveIntegerField(default=0)
    # Slugs this status may move to; empty means any status of the workflow.
    allowed_transitions = models.JSONField(default=list, blank=True, validators=[validate_json_value])
    version = version_field()

    class Meta:
        db_table = "statuses"
        ordering = ["project_id", "order", "slug"]
        verbose_name_plural = "statuses"
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="statuses_unique_slug_per_project"),
            _choices_check("category", StatusCategory.choices, "statuses_category_valid"),
        ]

    def __str__(self) -> str:
        return self.slug

    def allows(self, target: Status) -> bool:
        return not self.allowed_transitions or target.slug in self.allowed_transitions


# The workflow every new project starts with: it covers the statuses seen in the seeds.
DEFAULT_WORKFLOW: list[dict] = [
    {"slug": "draft", "name": "Draft", "category": "backlog"},
    {"slug": "backlog", "name": "Backlog", "category": "backlog"},
    {"slug": "ready", "name": "Ready", "category": "unstarted"},
    {"slug": "in_progress", "name": "In progress", "category": "started"},
    {"slug": "active", "name": "Active", "category": "started"},
    {"slug": "blocked", "name": "Blocked", "category": "started"},
    {"slug": "review", "name": "Review", "category": "started"},
    {"slug": "done", "name": "Done", "category": "completed"},
    {"slug": "accepted", "name": "Accepted", "category": "completed", "allowed_transitions": ["done", "review"]},
    {"slug": "cancelled", "name": "Cancelled", "category": "cancelled", "allowed_transitions": ["draft", "backlog"]},
]
DEFAULT_STATUS_SLUG = "draft"


class Epic(TimestampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="epics")
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    version = version_field()

    class Meta:
        db_table = "epics"
        ordering = ["project_id", "slug"]
        constraints = [models.UniqueConstraint(fields=["project", "slug"], name="epics_unique_slug_per_project")]

    def __str__(self) -> str:
        return self.slug


class Priority(models.IntegerChoices):
    """Stored as a number so that it orders; shown and accepted as a word."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"
    URGENT = 4, "urgent"
    CRITICAL = 5, "critical"

    @classmethod
    def from_word(cls, word: str) -> Priority:
        try:
            return cls(PRIORITY_BY_WORD[str(word).strip().lower()])
        except KeyError:
            raise ValueError(word) from None


# The one priority map: stored number <-> the word the API, files and exports use.
PRIORITY_WORDS: dict[int, str] = dict(Priority.choices)
PRIORITY_BY_WORD: dict[str, int] = {word: value for value, word in Priority.choices}


# Story keys never contain ':' — it separates project and key in "other-project:KEY".
story_key_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, '.', '_' and '-' only, starting with a letter or digit (e.g. INF-013).",
)


class StoryQuerySet(models.QuerySet):
    """Refuses status changes that would skip status_history and audit_log."""

    def update(self, **kwargs):
        if "status" in kwargs or "status_id" in kwargs:
            raise StatusWriteError("Change a story's status with stories.services.story_transition().")
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        if "status" in fields or "status_id" in fields:
            raise StatusWriteError("Change a story's status with stories.services.story_transition().")
        return super().bulk_update(objs, fields, batch_size=batch_size)


class Story(TimestampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stories")
    key = models.CharField(max_length=64, validators=[story_key_validator])
    title = models.CharField(max_length=500)
    backlog = models.ForeignKey(Backlog, null=True, blank=True, on_delete=models.SET_NULL, related_name="stories")
    epic = models.ForeignKey(Epic, null=True, blank=True, on_delete=models.SET_NULL, related_name="stories")
    status = models.ForeignKey(Status, on_delete=models.PROTECT, related_name="stories")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    estimate = models.CharField(max_length=32, blank=True, default="")
    points_min = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    points_max = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    branch_name = models.CharField(max_length=255, blank=True, default="")
    file_path = models.CharField(max_length=1000, blank=True, default="")
    owner = models.CharField(max_length=150, blank=True, default="")
    author = models.CharField(max_length=150, blank=True, default="")
    labels = models.JSONField(default=list, blank=True, validators=[validate_json_value])
    created = models.DateField(null=True, blank=True)
    last_updated = models.DateField(null=True, blank=True)
    body = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_json_value])
    version = models.PositiveIntegerField(default=1)

    objects = StoryQuerySet.as_manager()

    class Meta:
        db_table = "stories"
        ordering = ["project_id", "key"]
        verbose_name_plural = "stories"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="stories_unique_key_per_project"),
            _choices_check("priority", Priority.choices, "stories_priority_valid"),
            models.CheckConstraint(condition=Q(version__gte=1), name="stories_version_positive"),
            models.CheckConstraint(
                condition=Q(points_min__isnull=True)
                | Q(points_max__isnull=True)
                | Q(points_min__lte=models.F("points_max")),
                name="stories_points_range_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status"], name="stories_project_status_idx"),
            models.Index(fields=["project", "epic"], name="stories_project_epic_idx"),
            models.Index(fields=["backlog", "priority"], name="stories_backlog_priority_idx"),
            models.Index(fields=["owner"], name="stories_owner_idx"),
            models.Index(fields=["updated_at", "id"], name="stories_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def ref(self) -> str:
        """Key qualified by project, as used in cross-project dependencies."""
        return f"{self.project.slug}:{self.key}"


class DependencyType(models.TextChoices):
    BLOCKS = "blocks", "Blocks"
    RELATES = "relates", "Relates"
    DUPLICATES = "duplicates", "Duplicates"


class StoryDependency(models.Model):
    """`story` depends on `depends_on`; for type blocks, `depends_on` must finish first."""

    Type = DependencyType

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="dependents")
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.BLOCKS)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "story_dependencies"
        verbose_name_plural = "story dependencies"
        constraints = [
            models.UniqueConstraint(fields=["story", "depends_on"], name="story_dependencies_unique_pair"),
            models.CheckConstraint(condition=~Q(story=models.F("depends_on")), name="story_dependencies_no_self"),
            _choices_check("type", DependencyType.choices, "story_dependencies_type_valid"),
        ]
        indexes = [
            models.Index(fields=["depends_on", "type"], name="story_deps_depends_on_idx"),
            models.Index(fields=["story", "type"], name="story_deps_story_idx"),
        ]

    def __str__(self) -> str:
        # No story ids: this text reaches pages (delete confirmations, admin messages)
        # read by people who may not see one of the two stories.
        return f"dependency #{self.pk} ({self.type})"


class ProjectDependencyType(models.TextChoices):
    INTEGRATES = "integrates", "Integrates"
    SHARES = "shares", "Shares"
    DEPENDS = "depends", "Depends"


class ProjectDependency(models.Model):
    Type = ProjectDependencyType

    from_project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dependencies")
    to_project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dependents")
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.DEPENDS)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "project_dependencies"
        verbose_name_plural = "project dependencies"
        constraints = [
            models.UniqueConstraint(fields=["from_project", "to_project"], name="project_dependencies_unique_pair"),
            models.CheckConstraint(
                condition=~Q(from_project=models.F("to_project")), name="project_dependencies_no_self"
            ),
            _choices_check("type", ProjectDependencyType.choices, "project_dependencies_type_valid"),
        ]

    def __str__(self) -> str:
        # No project ids, for the same reason as StoryDependency.__str__.
        return f"project dependency #{self.pk} ({self.type})"


class MemberRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class ProjectMember(models.Model):
    Role = MemberRole

    # Higher ranks include the rights of the lower ones.
    RANK = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    version = version_field()

    class Meta:
        db_table = "project_members"
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="project_members_unique_user"),
            _choices_check("role", MemberRole.choices, "project_members_role_valid"),
        ]
        indexes = [models.Index(fields=["user", "project"], name="project_members_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id} ({self.role})"


class StatusHistory(models.Model):
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="status_history")
    old_status = models.ForeignKey(Status, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    new_status = models.ForeignKey(Status, on_delete=models.PROTECT, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True, default="")

    class Meta:
        db_table = "status_history"
        ordering = ["story_id", "changed_at", "id"]
        verbose_name_plural = "status history"
        indexes = [models.Index(fields=["story", "changed_at"], name="status_history_story_time_idx")]

    def __str__(self) -> str:
        return f"{self.story_id}: {self.old_status_id} → {self.new_status_id}"
