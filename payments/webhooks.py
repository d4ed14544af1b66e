"""Webhook endpoints: their registration, secrets and rotation."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from oauth.models import Membership, Role
from payments.events import EVENT_TYPES, NewEvent, events_record
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from payments.nudge import nudge
from payments.representations import webhook_endpoint_json
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
) -> WebhookEndpoint:
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
    *, event: Event, endpoint: WebhookEndpoint | None = None
) -> list[WebhookDelivery]:
    """Send an event again: to one endpoint, or to every enabled endpoint that subscribes
    to it now. A new delivery each, with its own attempts; the old ones stay in the log."""
    endpoints = (
        [endpoint]
        if endpoint is not None
        else [
            e
            for e in WebhookEndpoint.objects.filter(
                organization_id=event.organization_id, livemode=event.livemode, status="enabled"
            )
            if e.subscribes_to(event.type)
        ]
    )
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
        if endpoint.subscribes_to(event.type)
    ]
    now = timezone.now()
    owed = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now) for event in events]
    )
    if owed:
        transaction.on_commit(lambda: nudge("payments.tasks.deliver_webhooks"))
    return len(owed)
