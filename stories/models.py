"""StoryHub's domain: projects, backlogs, workflows, epics, stories and their graph.

Writes go through ``stories.services``; these models only describe data and the
constraints the database itself enforces.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
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
    # A sprint's first and last day (inclusive, in the reader's time zone): the burndown's axis.
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    version = version_field()

    class Meta:
        db_table = "backlogs"
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="backlogs_unique_slug_per_project"),
            models.CheckConstraint(
                condition=Q(starts_on__isnull=True) | Q(ends_on__isnull=True) | Q(starts_on__lte=models.F("ends_on")),
                name="backlogs_sprint_dates_ordered",
            ),
            _choices_check("type", BacklogType.choices, "backlogs_type_valid"),
            _choices_check("status", BacklogStatus.choices, "backlogs_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id and self.project.slug}/{self.slug}"

    def clean(self) -> None:
        if (self.starts_on or self.ends_on) and self.type != BacklogType.SPRINT:
            raise ValidationError({"starts_on": ["Only a backlog of type 'sprint' has start and end dates."]})


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

# Numeric priorities as story files write them. Planning repositories rank: 1 is the
# highest. A project may set its own scale in settings["priority_scale"]: "high-first"
# (the default below), "low-first" (1 = low … 5 = critical, the stored numbers), or a
# mapping {"1": "critical", "2": "high", …}. A number past the scale's end means its
# lowest priority (7, 8, 99 in a 1–5 scale are "low"), 0 or less its highest.
PRIORITY_SCALES: dict[str, dict[int, int]] = {
    "high-first": {1: Priority.CRITICAL, 2: Priority.URGENT, 3: Priority.HIGH, 4: Priority.MEDIUM, 5: Priority.LOW},
    "low-first": {value: value for value in Priority.values},
}
DEFAULT_PRIORITY_SCALE = "high-first"
# The project setting that names the scale (the settings schema: stories.project_settings).
PRIORITY_SCALE_SETTING = "priority_scale"


def priority_scale(project_settings: dict | None) -> dict[int, int]:
    """number as written → stored priority, for a project's settings (ValueError if the
    setting is not a scale)."""
    given = (project_settings or {}).get(PRIORITY_SCALE_SETTING, DEFAULT_PRIORITY_SCALE)
    if isinstance(given, str) and given in PRIORITY_SCALES:
        return PRIORITY_SCALES[given]
    if isinstance(given, dict) and given:
        try:
            scale = {int(number): PRIORITY_BY_WORD[str(word).strip().lower()] for number, word in given.items()}
        except (KeyError, ValueError, TypeError):
            scale = {}
        if scale:
            return dict(sorted(scale.items()))
    names = ", ".join(PRIORITY_SCALES)
    raise ValueError(f"settings.priority_scale must be one of {names} or a mapping of numbers to priority words")


def priority_from_number(number: int, scale: dict[int, int]) -> int:
    """The stored priority a number on `scale` means (past either end: the end's)."""
    if number in scale:
        return scale[number]
    numbers = sorted(scale)
    return scale[numbers[0]] if number < numbers[0] else scale[numbers[-1]]


def priority_number(stored: int, scale: dict[int, int], written: object = None) -> int | None:
    """The number a story file writes for stored priority `stored`: the number it was
    written with when that still means it (so `priority: 7` stays 7), else the smallest
    number of the scale meaning it (None: the scale has none)."""
    text = str(written).strip() if isinstance(written, int | str) and not isinstance(written, bool) else ""
    if text.lstrip("-").isdigit() and priority_from_number(int(text), scale) == stored:
        return int(text)
    return next((number for number, value in scale.items() if value == stored), None)


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
    # No single-column index on project or backlog: stories_unique_key_per_project
    # (project, key) and stories_backlog_priority_idx (backlog, priority) lead with them and
    # serve the same lookups (and the cascades), so a per-column one only cost every write.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stories", db_index=False)
    key = models.CharField(max_length=64, validators=[story_key_validator])
    title = models.CharField(max_length=500)
    backlog = models.ForeignKey(
        Backlog, null=True, blank=True, on_delete=models.SET_NULL, related_name="stories", db_index=False
    )
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
    # Where the story's text lives (stories.importer, git sync): the repository it came
    # from, its path relative to that repository's root, and the sha256 of the file's
    # bytes as last imported or exported. A different file with the same key is a conflict.
    source_repo = models.CharField(max_length=500, blank=True, default="", db_default="")
    source_path = models.CharField(max_length=1000, blank=True, default="", db_default="")
    source_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Order within the project (and so within each board column and backlog): gapped
    # integers, lowest first; NULL = not ordered yet (new and imported stories), after the
    # ordered ones. stories.services.story_rank writes it (see RANK_STEP there).
    rank = models.BigIntegerField(null=True, blank=True, editable=False)

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
            models.Index(fields=["project", "rank"], name="stories_project_rank_idx"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def ref(self) -> str:
        """Key qualified by project, as used in cross-project dependencies."""
        return f"{self.project.slug}:{self.key}"


# The one order of stories by rank: ranked first (lowest first), then the unranked by key.
STORY_RANK_ORDER = (models.F("rank").asc(nulls_last=True), "key", "id")


class DependencyType(models.TextChoices):
    BLOCKS = "blocks", "Blocks"
    RELATES = "relates", "Relates"
    DUPLICATES = "duplicates", "Duplicates"


class BlocksGraphVersion(models.Model):
    """One row counting the transactions that wrote `blocks` links (bumped under the
    dependency-graph lock, stories.services.lock_blocks_graph). With the project's story
    versions it tells a cached topological order (stories.graph) whether it is current."""

    counter = models.BigIntegerField(default=0)

    class Meta:
        db_table = "blocks_graph_version"

    def __str__(self) -> str:
        return f"blocks graph version {self.counter}"


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
            # Covering on PostgreSQL (INCLUDE the other side): a story's links in either
            # direction from the index alone (the cross-project report, the graph walks).
            models.Index(fields=["depends_on", "type"], include=["story"], name="story_deps_on_cover_idx"),
            models.Index(fields=["story", "type"], include=["depends_on"], name="story_deps_story_cover_idx"),
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
        indexes = [
            # Covering on PostgreSQL (INCLUDE): the reports read a project's history story
            # by story from this index alone (index-only scans), never from the table.
            models.Index(
                fields=["story", "changed_at"],
                include=["old_status", "new_status"],
                name="status_history_story_cover_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.story_id}: {self.old_status_id} → {self.new_status_id}"


# --------------------------------------------------------------------------- import runs


class ImportOutcome(models.TextChoices):
    """What became of one file of an import (stories.importer)."""

    CREATED = "created", "created"
    UPDATED = "updated", "updated"
    UNCHANGED = "unchanged", "unchanged"
    CONFLICT = "conflict", "conflict"  # parked with its full text (ImportConflict)
    FAILED = "failed", "failed"
    EXCLUDED = "excluded", "excluded"  # --exclude, .storyhubignore or the default excludes
    SKIPPED = "skipped", "skipped"  # good, but not written (an atomic import with a bad file)


class ImportRunState(models.TextChoices):
    RUNNING = "running", "running"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"  # the import as a whole stopped (see `error`)


class ConflictKind(models.TextChoices):
    DUPLICATE_KEY = "duplicate_key", "same key as another file of the import"
    KEY_OWNED = "key_owned", "key owned by another source file"
    HEADING_MISMATCH = "heading_mismatch", "heading key differs from id"


class ConflictState(models.TextChoices):
    OPEN = "open", "open"
    KEPT_EXISTING = "kept_existing", "existing story kept"
    PARKED_WON = "parked_won", "parked file won"
    REKEYED = "rekeyed", "imported under a new key"


class ImportRun(models.Model):
    """One import (CLI, API, admin or a git sync): who ran it, on what, with which options,
    and what became of every file (ImportFile rows). Kept after the import, dry runs too:
    it is the import's report, not story data, so it writes no audit row of its own."""

    State = ImportRunState

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_runs")
    # Runs outlive users, like audit rows: no constraint, and a snapshot of who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_repr = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=20, default="cli")  # cli / api / admin / sync
    # The repository the files came from (Story.source_repo) and the roots given, in order:
    # [{"name": "backlog", "path": "backlog"}] (path relative to the repository).
    repository = models.CharField(max_length=500, blank=True, default="")
    roots = models.JSONField(default=list, blank=True)
    options = models.JSONField(default=dict, blank=True)  # continue_on_error, excludes, backlog, …
    dry_run = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RUNNING)
    counts = models.JSONField(default=dict, blank=True)  # outcome → number of files
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "import_runs"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["project", "started_at"], name="import_runs_project_idx")]
        constraints = [_choices_check("state", ImportRunState.choices, "import_runs_state_valid")]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.project_id})"


class ImportFile(models.Model):
    """One file of an import run and its outcome. `reason` is a stable code
    (e.g. `duplicate_key`, `key_owned`, `heading_mismatch`, `dependency_failed`, `yaml`,
    `excluded_default`), `message` the one-line explanation; `caused_by` is the file
    whose failure made this one fail (a dependency on a story whose own file failed)."""

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="files")
    root = models.CharField(max_length=200, blank=True, default="")
    path = models.CharField(max_length=1000)  # relative to its root
    outcome = models.CharField(max_length=20, choices=ImportOutcome.choices)
    reason = models.CharField(max_length=50, blank=True, default="")
    message = models.TextField(blank=True, default="")
    line = models.PositiveIntegerField(null=True, blank=True)
    key = models.CharField(max_length=64, blank=True, default="")
    story = models.ForeignKey("Story", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    caused_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    content_hash = models.CharField(max_length=64, blank=True, default="")
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "import_files"
        ordering = ["run_id", "id"]
        indexes = [models.Index(fields=["run", "outcome"], name="import_files_outcome_idx")]
        constraints = [_choices_check("outcome", ImportOutcome.choices, "import_files_outcome_valid")]

    def __str__(self) -> str:
        return f"{self.root}/{self.path}" if self.root else self.path


class ImportConflict(models.Model):
    """A file that was not imported because its key is taken: by another file of the same
    import (`duplicate_key`), by a story another source file owns (`key_owned`), or its
    heading names another key than its `id` (`heading_mismatch`). The file's full text is
    kept here until someone resolves it in the admin (stories.importruns): keep the
    existing story, let the parked file win, or import it under a new key."""

    Kind = ConflictKind
    State = ConflictState

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_conflicts")
    run = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="conflicts")
    file = models.ForeignKey(ImportFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    key = models.CharField(max_length=64)
    other_key = models.CharField(max_length=64, blank=True, default="")  # heading_mismatch: the heading's key
    source_repo = models.CharField(max_length=500, blank=True, default="")
    source_path = models.CharField(max_length=1000)  # the parked file, relative to its repository
    content = models.TextField()  # the parked file's full text, as read
    content_hash = models.CharField(max_length=64)
    # The story holding the key (None: its winner was not written, e.g. a dry run) and the
    # file it came from.
    story = models.ForeignKey("Story", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    story_source_path = models.CharField(max_length=1000, blank=True, default="")
    message = models.TextField(blank=True, default="")
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_story = models.ForeignKey("Story", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The text that lost when the parked file won (the story's own file, or its fields as JSON).
    replaced_content = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "import_conflicts"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "state"], name="import_conflicts_state_idx")]
        constraints = [
            _choices_check("kind", ConflictKind.choices, "import_conflicts_kind_valid"),
            _choices_check("state", ConflictState.choices, "import_conflicts_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.source_path})"


# --------------------------------------------------------------------------- git sync


class SyncLink(TimestampedModel):
    """A project's git repository for two-way sync (stories.sync): where (a URL or a path
    on this machine), which branch, which folders hold its story files, and the name of the
    environment variable holding the remote's credentials (never the secret itself).
    `last_commit` is the remote commit the last sync agreed with."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="sync_link")
    repository = models.CharField(max_length=500)
    branch = models.CharField(max_length=200, default="main")
    folders = models.JSONField(default=list, blank=True, validators=[validate_json_value])  # [] = the whole tree
    credentials_env = models.CharField(max_length=100, blank=True, default="")
    enabled = models.BooleanField(default=True)
    last_commit = models.CharField(max_length=40, blank=True, default="")
    last_sync_started_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_audit_id = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    version = version_field()

    class Meta:
        db_table = "sync_links"

    def __str__(self) -> str:
        return f"{self.project_id} ↔ {self.branch}"


class SyncedFile(models.Model):
    """What a link's last sync agreed on for one file: its path in the repository, the
    story it holds and the sha256 of its bytes on both sides at that moment. A side whose
    file (git) or rendering (StoryHub) hashes differently has changed since."""

    link = models.ForeignKey(SyncLink, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1000)
    story = models.ForeignKey("Story", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    content_hash = models.CharField(max_length=64)
    archived = models.BooleanField(default=False)  # the file was deleted in git; its story archived

    class Meta:
        db_table = "sync_files"
        constraints = [models.UniqueConstraint(fields=["link", "path"], name="sync_files_unique_path")]
        indexes = [models.Index(fields=["link", "story"], name="sync_files_story_idx")]

    def __str__(self) -> str:
        return self.path


class SyncConflictState(models.TextChoices):
    OPEN = "open", "open"
    KEPT_STORYHUB = "kept_storyhub", "StoryHub's version kept (pushed)"
    TOOK_REPOSITORY = "took_repository", "the repository's version taken (imported)"


class SyncConflict(models.Model):
    """A story changed in StoryHub and in git since the last sync (or deleted in git and
    changed in StoryHub). Both versions are kept: the story as it is, the file's text
    here. Until someone resolves it in the admin, the sync leaves that story and file
    alone in both directions."""

    State = SyncConflictState

    link = models.ForeignKey(SyncLink, on_delete=models.CASCADE, related_name="conflicts")
    story = models.ForeignKey("Story", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=64, blank=True, default="")
    path = models.CharField(max_length=1000)
    remote_commit = models.CharField(max_length=40)
    remote_content = models.TextField(blank=True, default="")  # the file's text in git
    remote_deleted = models.BooleanField(default=False)
    remote_hash = models.CharField(max_length=64, blank=True, default="")
    local_content = models.TextField(blank=True, default="")  # the story as StoryHub would write it
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        db_table = "sync_conflicts"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["link", "state"], name="sync_conflicts_state_idx")]
        constraints = [_choices_check("state", SyncConflictState.choices, "sync_conflicts_state_valid")]

    def __str__(self) -> str:
        return f"{self.key or self.path} ({self.state})"
