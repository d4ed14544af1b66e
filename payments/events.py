"""Events and their outbox: an event and one delivery row per subscribed webhook
endpoint are written in the caller's transaction, beside the change that caused them,
so an event exists exactly when its change committed. Sending happens after commit."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from ledger.models import Transfer
from oauth.models import Organization
from payments.models import Event, RequestLog, WebhookDelivery, WebhookEndpoint
from payments.nudge import nudge
from payments.representations import transfer_json
from payments.selectors import endpoint_may_receive

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
            if endpoint.subscribes_to(event.type) and endpoint_may_receive(endpoint, event)
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
    ).select_related("consent"):
        found[(endpoint.organization_id, endpoint.livemode)].append(endpoint)
    return found


def api_failures_report(*, minute: dt.datetime) -> list[Event]:
    """One `api_request.failed` event per organization, mode, application and error code
    for the minute starting at `minute`, carrying how many failed requests it stands for:
    a client failing a thousand times a minute sends its endpoint one event, not a flood.
    The application (null for a key of no application) is what an OAuth grant's view of
    these events is keyed on: a third party hears of its own failures only.

    Each is written once, however many workers run this and however often: what the
    minute already reported is read back from the events themselves, in the transaction
    that writes the rest (with their deliveries), and reporters of one minute queue on a
    lock. So a run that died or found the database down wrote nothing, and the next run
    reports the minute; none reports it twice, even after the cache is lost."""
    minute = minute.replace(second=0, microsecond=0)
    stamp = minute.isoformat().replace("+00:00", "Z")
    with transaction.atomic():
        _lock(f"api-failures-report:{stamp}")
        reported = set(
            Event.objects.filter(
                type="api_request.failed", created_at__gte=minute, data__object__minute=stamp
            ).values_list(
                "organization_id",
                "livemode",
                "data__object__application",
                "data__object__error_code",
            )
        )
        groups = (
            RequestLog.objects.filter(
                created_at__gte=minute,
                created_at__lt=minute + dt.timedelta(minutes=1),
                status__gte=400,
            )
            .values("organization_id", "livemode", "application_id", "error_code")
            .annotate(count=Count("id"), example=Max("id"), status=Max("status"))
            .order_by("organization_id", "livemode", "application_id", "error_code")
        )
        return events_record(
            [
                NewEvent(
                    organization_id=group["organization_id"],
                    livemode=group["livemode"],
                    type="api_request.failed",
                    object={
                        "object": "api_request_failures",
                        "application": group["application_id"] or None,
                        "error_code": group["error_code"] or "unknown",
                        "status": group["status"],
                        "count": group["count"],
                        "minute": stamp,
                        "example_request_id": group["example"],
                    },
                )
                for group in groups
                if (
                    group["organization_id"],
                    group["livemode"],
                    group["application_id"] or None,
                    group["error_code"] or "unknown",
                )
                not in reported
            ]
        )


def _lock(name: str) -> None:
    """A transaction-scoped lock on `name` (PostgreSQL; SQLite's writers queue anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])


EVENTS_KEPT_FOR = dt.timedelta(days=90)


def events_purge(*, now: dt.datetime | None = None) -> int:
    """Forget events (and their delivery logs) after 90 days; the contract keeps them
    at least 30."""
    cutoff = (now or timezone.now()) - EVENTS_KEPT_FOR
    deleted, _ = Event.objects.filter(created_at__lt=cutoff).delete()
    return deleted
