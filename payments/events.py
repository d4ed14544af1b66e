"""Events and their outbox: an event and one delivery row per subscribed webhook
endpoint are written in the caller's transaction, beside the change that caused them,
so an event exists exactly when its change committed. Sending happens after commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger.models import Transfer
from oauth.models import Organization
from payments.models import Event, WebhookDelivery, WebhookEndpoint
from payments.nudge import nudge
from payments.representations import transfer_json

TRANSFER_EVENTS = {
    "created": "transfer.created",
    "settled": "transfer.settled",
    "failed": "transfer.failed",
    "voided": "transfer.voided",
    "reversed": "transfer.reversed",
}
EVENT_TYPES = [
    *TRANSFER_EVENTS.values(),
    "api_request.failed",
    "webhook_endpoint.disabled",
]


@dataclass(frozen=True)
class NewEvent:
    organization_id: str
    livemode: bool
    type: str
    object: dict[str, Any]


def events_record(new: Sequence[NewEvent]) -> list[Event]:
    """Write the events and their deliveries; call inside the change's transaction."""
    if not new:
        return []
    events = Event.objects.bulk_create(
        [
            Event(
                organization_id=item.organization_id,
                livemode=item.livemode,
                type=item.type,
                data={"object": item.object},
            )
            for item in new
        ]
    )
    endpoints = _endpoints({(e.organization_id, e.livemode) for e in events})
    now = timezone.now()
    owed = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now)
            for event in events
            for endpoint in endpoints[(event.organization_id, event.livemode)]
            if endpoint.subscribes_to(event.type)
        ]
    )
    if owed:
        transaction.on_commit(lambda: nudge("payments.tasks.deliver_webhooks"))
    return events


def transfer_events(
    transfers: Iterable[Transfer], *, kind: str | None = None, holders_checked: bool = False
) -> list[Event]:
    """One event per transfer for its current state (or `kind`, e.g. "created"), for the
    organization that holds it. (The ledger's holders are opaque: the platform's own
    transfers, such as test money, belong to no organization and have no events.)"""
    transfers = list(transfers)
    holders = {t.holder for t in transfers}
    organizations = (
        holders
        if holders_checked
        else set(Organization.objects.filter(id__in=holders).values_list("id", flat=True))
    )
    return events_record(
        [
            NewEvent(
                organization_id=transfer.holder,
                livemode=transfer.livemode,
                type=TRANSFER_EVENTS[kind or transfer.status],
                object=transfer_json(transfer),
            )
            for transfer in transfers
            if transfer.holder in organizations
        ]
    )


def _endpoints(scopes: set[tuple[str, bool]]) -> dict[tuple[str, bool], list[WebhookEndpoint]]:
    found: dict[tuple[str, bool], list[WebhookEndpoint]] = defaultdict(list)
    organizations = {organization for organization, _ in scopes}
    for endpoint in WebhookEndpoint.objects.filter(
        organization_id__in=organizations, status="enabled"
    ):
        found[(endpoint.organization_id, endpoint.livemode)].append(endpoint)
    return found
