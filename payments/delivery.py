"""Sending what the outbox owes: signed per Standard Webhooks, at least once, retried on
a schedule kept in the database.

A worker claims due deliveries with FOR UPDATE SKIP LOCKED and pushes their
next_attempt_at a lease ahead before it sends, in its own short transaction: if the
worker dies mid-send, the delivery is simply due again when the lease runs out. Sends
run concurrently, so one slow receiver does not hold up the others.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from payments import webhooks
from payments.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments.representations import event_json
from payments.webhook_sender import SendResult, webhook_send

# After the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then every 10 h
# until five days have passed (the contract's schedule, with ±10 % jitter).
SCHEDULE = [
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
]
GIVE_UP_AFTER = dt.timedelta(days=5)
MAX_RETRY_AFTER = dt.timedelta(hours=10)
LEASE = dt.timedelta(seconds=60)
PER_ENDPOINT = 4
MAX_RESPONSE_LOGGED = 4096


def _scaled(delay: dt.timedelta) -> dt.timedelta:
    # WEBHOOK_TIME_SCALE < 1 lets tests watch a whole schedule in seconds.
    return delay * settings.WEBHOOK_TIME_SCALE


def retry_delay(attempt_count: int, retry_after: int | None = None) -> dt.timedelta:
    """The wait after the `attempt_count`-th failed try (1-based)."""
    base = SCHEDULE[min(attempt_count, len(SCHEDULE)) - 1]
    jittered = base * random.uniform(0.9, 1.1)  # noqa: S311 -- spreading load, not secrecy
    if retry_after is not None:
        # Honoured, within reason: a receiver's Retry-After cannot park a delivery
        # beyond the schedule's longest wait.
        jittered = max(jittered, min(dt.timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return _scaled(jittered)


def signed_headers(endpoint: WebhookEndpoint, message_id: str, body: bytes) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature: one `v1,…` signature per
    live secret, so during a rotation receivers holding either secret can verify."""
    now = timezone.now()
    secrets = [endpoint.secret]
    if endpoint.previous_secret and (
        endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(endpoint.previous_secret)
    signatures = [Webhook(secret).sign(message_id, now, body.decode()) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def deliveries_claim(*, limit: int) -> list[WebhookDelivery]:
    """Take up to `limit` due deliveries for this worker, for one lease, and at most
    PER_ENDPOINT of them for any one endpoint: a slow or dead receiver can hold only
    that many senders while it times out, never the whole batch."""
    now = timezone.now()
    with transaction.atomic():
        candidates = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at")[: limit * 4]
        )
        per_endpoint: dict[str, int] = {}
        due: list[WebhookDelivery] = []
        for delivery in candidates:
            taken = per_endpoint.get(delivery.endpoint_id, 0)
            if taken < PER_ENDPOINT and len(due) < limit:
                per_endpoint[delivery.endpoint_id] = taken + 1
                due.append(delivery)
        WebhookDelivery.objects.filter(id__in=[d.id for d in due]).update(
            next_attempt_at=now + LEASE
        )
    return due


def deliveries_run(*, limit: int = 100, concurrency: int = 8) -> int:
    """Send what is due, `concurrency` at a time; returns how many were tried."""
    due = deliveries_claim(limit=limit)
    if concurrency == 1:
        for owed in due:
            delivery_attempt(delivery=owed)
    elif due:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(_attempt_in_thread, due))
    return len(due)


def _attempt_in_thread(delivery: WebhookDelivery) -> None:
    try:
        delivery_attempt(delivery=delivery)
    finally:
        connections.close_all()


def delivery_attempt(*, delivery: WebhookDelivery) -> WebhookAttempt:
    """One try: send, log it, and decide what comes next."""
    endpoint, event = delivery.endpoint, delivery.event
    body = json.dumps(event_json(event), separators=(",", ":")).encode()
    attempted_at = timezone.now()
    if endpoint.status != "enabled":
        result = SendResult(None, b"", 0.0, "endpoint disabled", None)
    else:
        result = webhook_send(
            url=endpoint.url,
            body=body,
            headers=signed_headers(endpoint, event.id, body),
            allow_loopback=settings.WEBHOOKS_ALLOW_LOOPBACK,
        )
    return _record(delivery, attempted_at, result)


@transaction.atomic
def _record(
    delivery: WebhookDelivery, attempted_at: dt.datetime, result: SendResult
) -> WebhookAttempt:
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        attempted_at=attempted_at,
        status_code=result.status,
        latency_ms=round(result.latency_ms, 2),
        response_body=result.body[:MAX_RESPONSE_LOGGED].decode("utf-8", "replace"),
        error=result.error[:200],
    )
    delivery.attempt_count += 1
    if result.status is not None and 200 <= result.status < 300:
        delivery.status, delivery.next_attempt_at = "succeeded", None
    elif result.status == 410:
        # The receiver says the endpoint is gone for good.
        delivery.status, delivery.next_attempt_at = "failed", None
        WebhookEndpoint.objects.filter(id=delivery.endpoint_id).update(
            status="disabled", disabled_reason="the receiver answered 410 Gone"
        )
    elif delivery.endpoint.status != "enabled":
        delivery.status, delivery.next_attempt_at = "failed", None
    elif attempted_at - delivery.created_at > _scaled(GIVE_UP_AFTER):
        delivery.status, delivery.next_attempt_at = "failed", None
        webhooks.webhook_endpoint_disable_failing(
            endpoint=delivery.endpoint, failing_for=_scaled(GIVE_UP_AFTER)
        )
    else:
        delivery.next_attempt_at = timezone.now() + retry_delay(
            delivery.attempt_count, result.retry_after
        )
    delivery.save(update_fields=["attempt_count", "status", "next_attempt_at", "updated_at"])
    return attempt
