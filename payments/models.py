from __future__ import annotations

from django.db import models

from oauth.models import Organization


class IdempotencyRecord(models.Model):
    """The first response to a POST with an Idempotency-Key, written in the same
    transaction as the POST's effect: either both exist or neither does."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    key = models.CharField(max_length=255)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "livemode", "key"], name="idempotency_key_unique"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class RequestLog(models.Model):
    """One API request, for the portal's request log. Written in batches by a worker,
    kept 30 days."""

    id = models.CharField(max_length=40, primary_key=True)  # the request's req_… id
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    application_id = models.CharField(max_length=40, blank=True)
    credential_id = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    latency_ms = models.FloatField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "livemode", "-created_at"], name="reqlog_org_idx"),
            models.Index(fields=["created_at"], name="reqlog_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
