"""Input validation (unknown fields are refused) and the documented output shapes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from stories import fields
from stories.models import (
    DependencyType,
    MemberRole,
    ProjectStatus,
    StatusCategory,
    StoryDependency,
)

# The API's words for priorities (stored as numbers so they order).
PRIORITY_WORDS = list(fields.PRIORITY_BY_WORD)

# Read and write models use the same ChoiceFields, so each set of choices is one enum
# component (named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]) and a generated
# client can send back what it read.


class StrictSerializer(serializers.Serializer):
    """Refuses body fields it does not know, with 400."""

    def validate(self, attrs):
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Give a JSON object."]})
        wrong = {
            name: [f"Give {expected}."]
            for name, field in self.fields.items()
            if name in data and data[name] is not None and (expected := _json_type_error(field, data[name]))
        }
        if wrong:
            raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


def _json_type_error(field: serializers.Field, value) -> str | None:
    """JSON bodies must use the types the schema documents: DRF alone would turn 5 into
    "5" for a text field or "5" into 5 for a number."""
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "a string"
    if isinstance(field, serializers.CharField) and field.max_length is not None and len(value) > field.max_length:
        # Counted as sent: DRF would trim surrounding whitespace first and accept a value
        # longer than the schema's maxLength.
        return f"at most {field.max_length} characters"
    if isinstance(field, serializers.IntegerField) and (isinstance(value, bool) or not isinstance(value, int)):
        return "a whole number"
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "true or false"
    return None


class ProjectInputSerializer(StrictSerializer):
    slug = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    repository_url = serializers.URLField(required=False, allow_blank=True)
    submodule_path = serializers.CharField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=ProjectStatus.choices, required=False)
    metadata = serializers.DictField(required=False)
    settings = serializers.DictField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class ProjectSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    repository_url = serializers.CharField()
    submodule_path = serializers.CharField()
    status = serializers.ChoiceField(choices=ProjectStatus.choices)
    metadata = serializers.DictField()
    settings = serializers.DictField()
    version = serializers.IntegerField()
    role = serializers.ChoiceField(choices=MemberRole.choices, allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class StoryInputSerializer(StrictSerializer):
    key = serializers.CharField(max_length=fields.max_length("key"))
    title = serializers.CharField(max_length=fields.max_length("title"))
    status = serializers.CharField(required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    backlog = serializers.CharField(required=False, allow_null=True)
    epic = serializers.CharField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=PRIORITY_WORDS, required=False)
    estimate = serializers.CharField(required=False, allow_blank=True, max_length=fields.max_length("estimate"))
    branch_name = serializers.CharField(required=False, allow_blank=True, max_length=fields.max_length("branch_name"))
    file_path = serializers.CharField(required=False, allow_blank=True, max_length=fields.max_length("file_path"))
    owner = serializers.CharField(required=False, allow_blank=True, max_length=fields.max_length("owner"))
    author = serializers.CharField(required=False, allow_blank=True, max_length=fields.max_length("author"))
    labels = serializers.ListField(child=serializers.CharField(), required=False)
    created = serializers.DateField(required=False, allow_null=True)
    last_updated = serializers.DateField(required=False, allow_null=True)
    body = serializers.CharField(required=False, allow_blank=True)
    metadata = serializers.DictField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)
    override_blocked = serializers.BooleanField(
        required=False, help_text="Project admins: move a blocked story anyway (needs `reason`)."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, help_text="Why the blocked guard is overridden (audited)."
    )


class TransitionInputSerializer(StrictSerializer):
    status = serializers.CharField()
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    version = serializers.IntegerField(required=False, min_value=1)
    override_blocked = serializers.BooleanField(
        required=False, default=False, help_text="Project admins: move a blocked story anyway (needs `reason`)."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why the blocked guard is overridden (audited)."
    )


class DependencyInputSerializer(StrictSerializer):
    depends_on = serializers.CharField()
    type = serializers.ChoiceField(choices=StoryDependency.Type.choices, default=StoryDependency.Type.BLOCKS)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DependencyRefSerializer(serializers.Serializer):
    """One of a story's dependencies; a story the reader may not see is a placeholder
    with `depends_on: null` and `hidden: true`."""

    depends_on = serializers.CharField(allow_null=True, help_text='"KEY", "other-project:KEY", or null when hidden')
    type = serializers.ChoiceField(choices=DependencyType.choices)
    hidden = serializers.BooleanField(help_text="the linked story is in a project you cannot see")


class StorySerializer(serializers.Serializer):
    """Documents the hand-built payload of stories.api.payloads."""

    key = serializers.CharField()
    title = serializers.CharField()
    project = serializers.CharField()
    backlog = serializers.CharField(allow_null=True)
    epic = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    status_category = serializers.ChoiceField(choices=StatusCategory.choices)
    priority = serializers.ChoiceField(choices=PRIORITY_WORDS)
    estimate = serializers.CharField()
    points_min = serializers.FloatField(allow_null=True)
    points_max = serializers.FloatField(allow_null=True)
    branch_name = serializers.CharField()
    file_path = serializers.CharField()
    owner = serializers.CharField()
    author = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    created = serializers.DateField(allow_null=True)
    last_updated = serializers.DateField(allow_null=True)
    body = serializers.CharField()
    metadata = serializers.DictField()
    version = serializers.IntegerField()
    rank = serializers.IntegerField(
        allow_null=True,
        help_text="the planner's order within the project (board, ready queue); null = not ranked yet, "
        "after the ranked stories by key. Set with POST stories/{key}/rank/",
    )
    source_repo = serializers.CharField(help_text="the repository the story's file came from (import, git sync)")
    source_path = serializers.CharField(help_text="the story's file, relative to its repository")
    source_hash = serializers.CharField(help_text="sha256 of the file as last imported or exported")
    dependencies = DependencyRefSerializer(many=True)
    blocked = serializers.BooleanField()
    ready = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "description": "one failing item of a bulk request or an import",
                "properties": {
                    "index": {"type": "integer"},
                    "key": {"type": "string", "nullable": True},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["index", "field", "reason"],
            },
        ]
    }
)
class ErrorReasonField(serializers.JSONField):
    """A reason: text, or (bulk upsert) an object naming the item, field and reason."""


class ErrorSerializer(serializers.Serializer):
    """The one error shape: a stable `code`, a message and per-field reasons."""

    code = serializers.CharField(help_text="stable error code, e.g. validation_error, not_found, conflict")
    message = serializers.CharField()
    details = serializers.DictField(child=serializers.ListField(child=ErrorReasonField()))


def _code_field(code: str) -> serializers.CharField:
    """The `code` of one error type, documented as that constant (the discriminator of
    the 409 responses) without an enum component per code."""

    @extend_schema_field({"type": "string", "enum": [code]})
    class CodeField(serializers.CharField):
        pass

    return CodeField()


class ConflictErrorSerializer(ErrorSerializer):
    """409 `conflict`: a stale `version` (then `current_version` says the current one), a
    self-link, a duplicate link or removing the last owner."""

    code = _code_field("conflict")
    current_version = serializers.IntegerField(required=False)


class DependencyCycleErrorSerializer(ErrorSerializer):
    """409 `dependency_cycle`: the `blocks` link would close a cycle, listed in order."""

    code = _code_field("dependency_cycle")
    cycle = serializers.ListField(
        child=serializers.CharField(), help_text='story references ("KEY", "slug:KEY"; "(hidden)" for hidden ones)'
    )


class InvalidTransitionErrorSerializer(ErrorSerializer):
    """409 `invalid_transition`: the workflow does not allow that move."""

    code = _code_field("invalid_transition")
    current = serializers.CharField(help_text="the story's status (slug)")
    allowed = serializers.ListField(child=serializers.CharField(), help_text="statuses it may move to (slugs)")


class BlockedErrorSerializer(ErrorSerializer):
    """409 `blocked`: open `blocks` dependencies keep the story from that status."""

    code = _code_field("blocked")
    blockers = serializers.ListField(
        child=serializers.CharField(), help_text='the open blockers ("KEY", "slug:KEY"; "(hidden)" for hidden ones)'
    )


class PreconditionFailedErrorSerializer(ErrorSerializer):
    """412 `precondition_failed`: If-Match named an old version; the response's ETag
    header is the current one."""

    code = _code_field("precondition_failed")
    current_version = serializers.IntegerField(required=False)


class ServiceUnavailableErrorSerializer(ErrorSerializer):
    """503: the database is down, too slow or busy; nothing was changed, retry after
    `retry_after` seconds (also the Retry-After header)."""

    code = serializers.ChoiceField(choices=["database_unavailable", "database_timeout", "database_busy"])
    retry_after = serializers.IntegerField()
