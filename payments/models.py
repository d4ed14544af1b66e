from __future__ import annotations

from django.db import models

from common.ids import PrefixedIdField
from oauth.models import Consent, Organization


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


class Event(models.Model):
    """Something that happened to an organization's objects, recorded in the same
    transaction as the change itself: an event exists if and only if its change
    committed. Kept at least 30 days."""

    id = PrefixedIdField(prefix="evt")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    type = models.CharField(max_length=64)
    # {"object": {...}}: the object as the API shows it, at this moment.
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "livemode", "-id"], name="event_org_idx"),
            models.Index(fields=["created_at"], name="event_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class WebhookEndpoint(models.Model):
    id = PrefixedIdField(prefix="we")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField()
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    # Event types, or ["*"] for all of them.
    enabled_events = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=[("enabled", "enabled"), ("disabled", "disabled")], default="enabled"
    )
    disabled_reason = models.CharField(max_length=200, blank=True)
    # The signing secret (whsec_…); during a rotation the previous one signs beside it
    # until previous_secret_expires_at.
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Made through an OAuth token a user granted: only that grant sees and manages it,
    # and it is sent only what the grant may read (none of it once the grant is revoked).
    # None: made with the organization's own credentials, sent everything it subscribes to.
    consent = models.ForeignKey(
        Consent, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "livemode", "-id"], name="endpoint_org_idx")
        ]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


class WebhookDelivery(models.Model):
    """One event owed to one endpoint: the transactional outbox row, written with the
    event. Retry times live here (next_attempt_at), not in the broker."""

    id = PrefixedIdField(prefix="whd")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=16,
        choices=[("pending", "pending"), ("succeeded", "succeeded"), ("failed", "failed")],
        default="pending",
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at a delivery: what was sent when, and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()
    # The first 4 KiB of the response, for the developer reading the log.
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "attempted_at"], name="attempt_delivery_idx")]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"
