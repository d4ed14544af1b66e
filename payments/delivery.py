"""Sending what the outbox owes: signed per Standard Webhooks, at least once, retried on
a schedule kept in the database.

A worker claims a batch of due deliveries with FOR UPDATE SKIP LOCKED and pushes their
next_attempt_at a lease ahead, in its own short transaction; sends them, PER_ENDPOINT
at a time for any one endpoint (so a slow or dead receiver holds only that many
senders); then writes every attempt and each delivery's next step in one transaction.
The senders never touch the database. If the worker dies before that write, the batch
is simply due again when the lease runs out: sent at least once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
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
# At most PER_ENDPOINT sends to one endpoint at once, and PER_ENDPOINT_BATCH of its
# deliveries in one batch. A lane (one sender) starts no send once LANE_BUDGET has
# passed and a send takes at most 10 s, so a batch ends within 15 s even against a dead
# receiver (which then gets PER_ENDPOINT tries a batch), well inside its lease.
PER_ENDPOINT = 4
PER_ENDPOINT_BATCH = 100
LANE_BUDGET = dt.timedelta(seconds=5)
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
    """Take up to `limit` due deliveries for this worker, for one lease, oldest first,
    and at most PER_ENDPOINT_BATCH of them for any one endpoint, so that one endpoint's
    backlog cannot keep the others waiting. Only ids are read to choose them."""
    now = timezone.now()
    with transaction.atomic():
        candidates = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", "endpoint_id")[: limit * 4]
        )
        per_endpoint: dict[str, int] = {}
        chosen: list[str] = []
        for delivery_id, endpoint_id in candidates:
            taken = per_endpoint.get(endpoint_id, 0)
            if taken < PER_ENDPOINT_BATCH and len(chosen) < limit:
                per_endpoint[endpoint_id] = taken + 1
                chosen.append(delivery_id)
        WebhookDelivery.objects.filter(id__in=chosen).update(next_attempt_at=now + LEASE)
    return list(
        WebhookDelivery.objects.filter(id__in=chosen)
        .select_related("event", "endpoint")
        .order_by("next_attempt_at", "id")
    )


@dataclass(frozen=True)
class _Sent:
    delivery: WebhookDelivery
    attempted_at: dt.datetime
    # None: not sent, the lane ran out of time; the delivery is released, not tried.
    result: SendResult | None


def deliveries_run(*, limit: int = 200, concurrency: int = 8) -> int:
    """Claim a batch, send it, record it; returns how many were tried."""
    due = deliveries_claim(limit=limit)
    if not due:
        return 0
    lanes = _lanes(due)
    if concurrency == 1:
        sent = [_send_lane(lane) for lane in lanes]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(lanes))) as pool:
            sent = list(pool.map(_send_lane, lanes))
    outcomes = list(itertools.chain.from_iterable(sent))
    _record(outcomes)
    return sum(outcome.result is not None for outcome in outcomes)


def _lanes(due: list[WebhookDelivery]) -> list[list[WebhookDelivery]]:
    """Each endpoint's deliveries dealt into at most PER_ENDPOINT lanes, each sent one
    after another by one sender: at most PER_ENDPOINT sends to an endpoint at once."""
    by_endpoint: dict[str, list[WebhookDelivery]] = {}
    for delivery in due:
        by_endpoint.setdefault(delivery.endpoint_id, []).append(delivery)
    lanes: list[list[WebhookDelivery]] = []
    for deliveries in by_endpoint.values():
        count = min(PER_ENDPOINT, len(deliveries))
        lanes += [deliveries[number::count] for number in range(count)]
    return lanes


def _send_lane(lane: list[WebhookDelivery]) -> list[_Sent]:
    """Send one lane in order. After its first send, a lane starts none once LANE_BUDGET
    has passed (a slow receiver), so its batch is recorded well inside the lease; the
    rest are released."""
    started = time.monotonic()
    sent: list[_Sent] = []
    for delivery in lane:
        if sent and time.monotonic() - started > LANE_BUDGET.total_seconds():
            sent.append(_Sent(delivery, timezone.now(), None))
        else:
            sent.append(_Sent(delivery, timezone.now(), _send(delivery)))
    return sent


def _send(delivery: WebhookDelivery) -> SendResult:
    endpoint, event = delivery.endpoint, delivery.event
    if endpoint.status != "enabled":
        return SendResult(None, b"", 0.0, "endpoint disabled", None)
    body = json.dumps(event_json(event), separators=(",", ":")).encode()
    return webhook_send(
        url=endpoint.url,
        body=body,
        headers=signed_headers(endpoint, event.id, body),
        allow_loopback=settings.WEBHOOKS_ALLOW_LOOPBACK,
    )


def delivery_attempt(*, delivery: WebhookDelivery) -> WebhookAttempt:
    """One try of one delivery, sent and recorded now."""
    attempted_at = timezone.now()
    _record([_Sent(delivery, attempted_at, _send(delivery))])
    return WebhookAttempt.objects.filter(delivery=delivery).latest("attempted_at", "id")


@transaction.atomic
def _record(outcomes: list[_Sent]) -> None:
    """Every attempt of a batch and what comes next for each delivery, in one
    transaction: a few statements whatever the batch's size."""
    now = timezone.now()
    attempts = []
    for outcome in outcomes:
        delivery, result = outcome.delivery, outcome.result
        delivery.updated_at = now
        if result is None:
            delivery.next_attempt_at = now  # released untried: due again at once
            continue
        attempts.append(
            WebhookAttempt(
                delivery=delivery,
                attempted_at=outcome.attempted_at,
                status_code=result.status,
                latency_ms=round(result.latency_ms, 2),
                response_body=result.body[:MAX_RESPONSE_LOGGED].decode("utf-8", "replace"),
                error=result.error[:200],
            )
        )
        delivery.attempt_count += 1
        _next_step(delivery, outcome.attempted_at, result)
    WebhookAttempt.objects.bulk_create(attempts)
    # The usual outcomes in one statement each; the rest (retries, failures) row by row.
    succeeded = [o.delivery.id for o in outcomes if o.result and o.delivery.status == "succeeded"]
    released = [o.delivery.id for o in outcomes if o.result is None]
    WebhookDelivery.objects.filter(id__in=succeeded).update(
        status="succeeded",
        next_attempt_at=None,
        attempt_count=F("attempt_count") + 1,
        updated_at=now,
    )
    WebhookDelivery.objects.filter(id__in=released).update(next_attempt_at=now, updated_at=now)
    WebhookDelivery.objects.bulk_update(
        [o.delivery for o in outcomes if o.result and o.delivery.status != "succeeded"],
        ["attempt_count", "status", "next_attempt_at", "updated_at"],
    )


def _next_step(delivery: WebhookDelivery, attempted_at: dt.datetime, result: SendResult) -> None:
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
