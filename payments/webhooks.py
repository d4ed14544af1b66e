"""Webhook endpoints: their registration, secrets and rotation."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Substr
from django.utils import timezone

from oauth.models import Membership, Role
from payments.events import EVENT_TYPES, NewEvent, events_record
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments.nudge import nudge
from payments.representations import webhook_endpoint_json
from payments.selectors import endpoint_may_receive
from payments.webhook_sender import url_check

ROTATION_OVERLAP = dt.timedelta(hours=24)


class EndpointError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def new_secret() -> str:
    """Standard Webhooks format: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def url_refusal(url: str) -> str | None:
    """What is wrong with a target URL, judged without DNS; the sender checks every
    address again when it connects, which is what stops DNS rebinding."""
    if settings.PRODUCTION and not url.startswith("https://"):
        return "use https"
    return url_check(url, allow_loopback=settings.WEBHOOKS_ALLOW_LOOPBACK)


def events_check(enabled_events: list[str]) -> list[str]:
    if not enabled_events:
        raise EndpointError("enabled_events", 'name at least one event type, or "*"')
    unknown = sorted(set(enabled_events) - {"*", *EVENT_TYPES})
    if unknown:
        raise EndpointError("enabled_events", f"unknown event types: {', '.join(unknown)}")
    return sorted(set(enabled_events))


def webhook_endpoint_create(
    *,
    organization_id: str,
    livemode: bool,
    url: str,
    enabled_events: list[str],
    description: str = "",
    consent_id: str | None = None,
) -> WebhookEndpoint:
    """`consent_id`: made through an OAuth token, under that user's grant."""
    refusal = url_refusal(url)
    if refusal:
        raise EndpointError("url", refusal)
    return WebhookEndpoint.objects.create(
        organization_id=organization_id,
        livemode=livemode,
        url=url,
        enabled_events=events_check(enabled_events),
        description=description,
        secret=new_secret(),
        consent_id=consent_id,
    )


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    enabled_events: list[str] | None = None,
    description: str | None = None,
    status: str | None = None,
) -> WebhookEndpoint:
    if url is not None:
        refusal = url_refusal(url)
        if refusal:
            raise EndpointError("url", refusal)
        endpoint.url = url
    if enabled_events is not None:
        endpoint.enabled_events = events_check(enabled_events)
    if description is not None:
        endpoint.description = description
    if status is not None:
        endpoint.status = status
        endpoint.disabled_reason = "" if status == "enabled" else "disabled by its owner"
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing beside it for 24 hours, so receivers
    can switch without dropping a delivery."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def event_redeliver(
    *, event: Event, endpoint: WebhookEndpoint | None = None, consent_id: str | None = None
) -> list[WebhookDelivery]:
    """Send an event again: to one endpoint, or to every enabled endpoint that subscribes
    to it now (only those made under `consent_id`, when an OAuth grant asks). A new
    delivery each, with its own attempts; the old ones stay in the log."""
    if endpoint is not None:
        endpoints = [endpoint]
    else:
        candidates = WebhookEndpoint.objects.filter(
            organization_id=event.organization_id, livemode=event.livemode, status="enabled"
        ).select_related("consent")
        if consent_id is not None:
            candidates = candidates.filter(consent_id=consent_id)
        endpoints = [e for e in candidates if owed_to(e, event)]
    now = timezone.now()
    owed = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=event, endpoint=e, next_attempt_at=now) for e in endpoints]
    )
    if owed:
        transaction.on_commit(lambda: nudge("payments.tasks.deliver_webhooks"))
    return owed


def webhook_endpoint_disable_failing(
    *, endpoint: WebhookEndpoint, failing_for: dt.timedelta
) -> bool:
    """Disable an endpoint that has answered nothing but failures for `failing_for`,
    tell its organization's other endpoints (webhook_endpoint.disabled) and e-mail
    its owners. False if it succeeded within that time, and stays enabled."""
    since = timezone.now() - failing_for
    if WebhookAttempt.objects.filter(
        delivery__endpoint=endpoint,
        attempted_at__gte=since,
        status_code__gte=200,
        status_code__lt=300,
    ).exists():
        return False
    updated = WebhookEndpoint.objects.filter(id=endpoint.id, status="enabled").update(
        status="disabled", disabled_reason="every delivery failed for five days"
    )
    if not updated:
        return False
    endpoint.refresh_from_db()
    events_record(
        [
            NewEvent(
                organization_id=endpoint.organization_id,
                livemode=endpoint.livemode,
                type="webhook_endpoint.disabled",
                object=webhook_endpoint_json(endpoint),
            )
        ]
    )
    owners = list(
        Membership.objects.filter(
            organization_id=endpoint.organization_id, role=Role.OWNER
        ).values_list("user__email", flat=True)
    )
    if owners:
        transaction.on_commit(
            lambda: send_mail(
                subject="A webhook endpoint was disabled",
                message=(
                    f"Every delivery to {endpoint.url} ({endpoint.id}) has failed for five "
                    "days, so it was disabled. Fix the receiver, enable the endpoint again "
                    "in the developer portal, and replay the events you missed."
                ),
                from_email=None,
                recipient_list=[email for email in owners if email],
                fail_silently=True,
            )
        )
    return True


REPLAY_LIMIT = 10_000


def webhook_endpoint_replay(*, endpoint: WebhookEndpoint, since: dt.datetime) -> int:
    """Send an endpoint every event it subscribes to that happened since `since` (at
    most REPLAY_LIMIT, oldest first): after an outage on the receiver's side."""
    events = [
        event
        for event in Event.objects.filter(
            organization_id=endpoint.organization_id,
            livemode=endpoint.livemode,
            created_at__gte=since,
        ).order_by("id")[:REPLAY_LIMIT]
        if owed_to(endpoint, event)
    ]
    now = timezone.now()
    owed = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now) for event in events]
    )
    if owed:
        transaction.on_commit(lambda: nudge("payments.tasks.deliver_webhooks"))
    return len(owed)


# --- Test events, and the reads behind the portal's webhook pages ----------------------

TEST_EVENT_TYPE = "webhook_endpoint.test"


def owed_to(endpoint: WebhookEndpoint, event: Event) -> bool:
    """Whether `endpoint` is sent `event` on a replay. A test event belongs to the one
    endpoint it was sent to, even when another one takes every type ("*"); an endpoint
    made under an OAuth grant gets only what the grant may read."""
    if event.type == TEST_EVENT_TYPE:
        return bool(event.data.get("webhook_endpoint") == endpoint.id)
    return endpoint.subscribes_to(event.type) and endpoint_may_receive(endpoint, event)


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> Event:
    """A `webhook_endpoint.test` event owed to this endpoint alone, whatever event types
    it chose. It goes through the outbox like any event (signed, retried, logged), so a
    success proves the whole path a real event takes."""
    if endpoint.status != "enabled":
        raise EndpointError("status", "enable the endpoint before sending it a test event")
    with transaction.atomic():
        event = Event.objects.create(
            organization_id=endpoint.organization_id,
            livemode=endpoint.livemode,
            type=TEST_EVENT_TYPE,
            data={
                "webhook_endpoint": endpoint.id,
                "message": "A test event from OpenPay: your endpoint is receiving webhooks.",
            },
        )
        WebhookDelivery.objects.create(
            event=event, endpoint=endpoint, next_attempt_at=event.created_at
        )
        transaction.on_commit(lambda: nudge("payments.tasks.deliver_webhooks"))
    return event


@dataclass(frozen=True)
class EndpointOverview:
    """An endpoint with how its deliveries are going."""

    endpoint: WebhookEndpoint
    last_delivery: WebhookDelivery | None
    attempts_last_day: int
    successes_last_day: int

    @property
    def success_rate(self) -> float | None:
        """Percent of the last 24 hours' attempts that got a 2xx; None with no attempts."""
        if not self.attempts_last_day:
            return None
        return 100 * self.successes_last_day / self.attempts_last_day

    @property
    def disabled_by_failures(self) -> bool:
        return endpoint_disabled_by_failures(self.endpoint)


def endpoint_disabled_by_failures(endpoint: WebhookEndpoint) -> bool:
    """Disabled by the sender (five days of failures, a 410 Gone), not by its owner."""
    return endpoint.status == "disabled" and endpoint.disabled_reason not in (
        "",
        "disabled by its owner",
    )


def webhook_endpoints_overview(*, organization_id: str) -> list[EndpointOverview]:
    """Every endpoint of the organization, in both modes, newest first: three queries
    whatever their number."""
    newest_delivery = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-id")
    endpoints = list(
        WebhookEndpoint.objects.filter(organization_id=organization_id)
        .select_related("consent__application")
        .annotate(last_delivery_id=Subquery(newest_delivery.values("id")[:1]))
        .order_by("-id")
    )
    last_ids = [getattr(endpoint, "last_delivery_id", None) for endpoint in endpoints]
    deliveries = WebhookDelivery.objects.select_related("event").in_bulk(
        [delivery_id for delivery_id in last_ids if delivery_id]
    )
    since = timezone.now() - dt.timedelta(hours=24)
    counts = {
        row["delivery__endpoint_id"]: row
        for row in WebhookAttempt.objects.filter(
            delivery__endpoint__organization_id=organization_id, attempted_at__gte=since
        )
        .values("delivery__endpoint_id")
        .annotate(
            attempts=Count("id"),
            successes=Count("id", filter=Q(status_code__gte=200, status_code__lt=300)),
        )
        .order_by()
    }
    return [
        EndpointOverview(
            endpoint=endpoint,
            last_delivery=deliveries.get(last_id) if last_id else None,
            attempts_last_day=counts.get(endpoint.id, {}).get("attempts", 0),
            successes_last_day=counts.get(endpoint.id, {}).get("successes", 0),
        )
        for endpoint, last_id in zip(endpoints, last_ids, strict=True)
    ]


def webhook_endpoint_get(*, organization_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """One of the organization's endpoints, in either mode; None for anyone else's."""
    return WebhookEndpoint.objects.filter(id=endpoint_id, organization_id=organization_id).first()


DELIVERY_ID = re.compile(r"whd_[0-9a-z]{26}")
RESPONSE_EXCERPT = 200


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: Sequence[WebhookDelivery]
    # The id to ask for the next, older page with (`before`), or None on the last page.
    older: str | None


def webhook_deliveries_page(
    *, endpoint: WebhookEndpoint, before: str | None = None, limit: int = 50
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, cut by id (ids are time-ordered, so a
    page stays put while new deliveries arrive). Each carries its last attempt's
    `last_status_code`, `last_latency_ms`, `last_error`, `last_attempted_at` and the
    start of its response, `last_response`."""
    last = WebhookAttempt.objects.filter(delivery=OuterRef("pk")).order_by("-attempted_at", "-id")
    query = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .defer("event__data")
        .annotate(
            last_status_code=Subquery(last.values("status_code")[:1]),
            last_latency_ms=Subquery(last.values("latency_ms")[:1]),
            last_error=Subquery(last.values("error")[:1]),
            last_attempted_at=Subquery(last.values("attempted_at")[:1]),
            last_response=Subquery(
                last.annotate(excerpt=Substr("response_body", 1, RESPONSE_EXCERPT)).values(
                    "excerpt"
                )[:1]
            ),
        )
        .order_by("-id")
    )
    if before and DELIVERY_ID.fullmatch(before):
        query = query.filter(id__lt=before)
    rows = list(query[: limit + 1])
    shown = rows[:limit]
    return DeliveryPage(deliveries=shown, older=shown[-1].id if len(rows) > limit else None)


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery | None:
    """One of the endpoint's deliveries with its event and every attempt, oldest first."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint, id=delivery_id)
        .select_related("event")
        .prefetch_related(
            Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("attempted_at", "id"))
        )
        .first()
    )
