"""Database sessions in the `sessions` table: sid, sess (JSON, queryable), expire."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class SessionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(expire__gt=timezone.now())


class Session(models.Model):
    sid = models.CharField(max_length=40, primary_key=True)
    sess = models.JSONField(default=dict)
    expire = models.DateTimeField()
    # Who and what the session belongs to, so an administrator can list and revoke.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="db_sessions"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)

    objects = SessionQuerySet.as_manager()

    class Meta:
        db_table = "sessions"
        indexes = [
            models.Index(fields=["expire"], name="idx_sessions_expire"),
            models.Index(fields=["user", "expire"], name="idx_sessions_user"),
        ]

    def __str__(self) -> str:
        return f"{self.sid[:8]}… ({self.user or 'anonymous'})"


class ApiKey(models.Model):
    """An API key: shown once at creation, stored only as a sha256 hash (the keys are
    high-entropy random strings, so a fast hash is enough) plus a short visible prefix."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
