"""Reads of the payments layer for the portal: the request log, webhook deliveries, an
organization's accounts and test transfers, and the labels of the credentials that
made each request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from ledger import selectors as books
from ledger.models import Account, Transfer
from oauth.models import APIKey, Application
from payments.models import Event, RequestLog, WebhookDelivery, WebhookEndpoint

# Requests and deliveries ------------------------------------------------------------------


@dataclass(frozen=True)
class HourlyCount:
    hour: dt.datetime  # the start of the hour, UTC
    requests: int
    errors: int  # status ≥ 400


def request_counts_by_hour(*, organization_id: str, since: dt.datetime) -> list[HourlyCount]:
    """Requests and errors per hour from `since` on, oldest first, in one GROUP BY.
    Hours without a request are left out."""
    rows = (
        RequestLog.objects.filter(organization_id=organization_id, created_at__gte=since)
        .annotate(hour=TruncHour("created_at", tzinfo=dt.UTC))
        .values("hour")
        .annotate(requests=Count("pk"), errors=Count("pk", filter=Q(status__gte=400)))
        .order_by("hour")
    )
    return [HourlyCount(row["hour"], row["requests"], row["errors"]) for row in rows]


def requests_recent(*, organization_id: str, limit: int = 10) -> list[RequestLog]:
    return list(
        RequestLog.objects.filter(organization_id=organization_id).order_by("-created_at", "-id")[
            :limit
        ]
    )


@dataclass(frozen=True)
class RequestFilter:
    """What the request log is narrowed to; None (or "") leaves a criterion out."""

    status: int | None = None  # an exact code, e.g. 404
    status_class: int | None = None  # 2, 4 or 5: 2xx, 4xx, 5xx
    path_contains: str = ""
    method: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    livemode: bool | None = None


# The position after which a page starts: (created_at, id) of the previous page's last row.
RequestCursor = tuple[dt.datetime, str]


def requests_page(
    *,
    organization_id: str,
    filters: RequestFilter,
    after: RequestCursor | None = None,
    limit: int = 50,
) -> list[RequestLog]:
    """Up to `limit` + 1 requests, newest first: the extra one says there is another page.
    Cut by key, not OFFSET, so a page costs the same at any depth and rows logged
    meanwhile do not shift the pages after the first."""
    query = RequestLog.objects.filter(organization_id=organization_id)
    if filters.status is not None:
        query = query.filter(status=filters.status)
    if filters.status_class is not None:
        query = query.filter(
            status__gte=filters.status_class * 100, status__lt=(filters.status_class + 1) * 100
        )
    if filters.path_contains:
        query = query.filter(path__contains=filters.path_contains)
    if filters.method:
        query = query.filter(method=filters.method)
    if filters.since is not None:
        query = query.filter(created_at__gte=filters.since)
    if filters.until is not None:
        query = query.filter(created_at__lte=filters.until)
    if filters.livemode is not None:
        query = query.filter(livemode=filters.livemode)
    if after is not None:
        created_at, request_id = after
        query = query.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=request_id)
        )
    return list(query.order_by("-created_at", "-id")[: limit + 1])


@dataclass(frozen=True)
class Credential:
    kind: str  # "api_key" or "oauth_app"
    label: str  # the key's prefix…last4, or the application's name


def credential_labels(
    *, organization_id: str, requests: Iterable[RequestLog]
) -> dict[str, Credential]:
    """How people recognise the credential behind each request: an API key by its prefix
    and last four characters, an OAuth token by its application. Keyed by credential
    id; two queries whatever the number of requests."""
    requests = list(requests)
    key_ids = {r.credential_id for r in requests if r.credential_id.startswith("key_")}
    keys = {
        key.id: key.redacted
        for key in APIKey.objects.filter(organization_id=organization_id, id__in=key_ids).only(
            "id", "prefix", "last4"
        )
    }
    app_ids = {r.application_id for r in requests if r.application_id}
    apps = dict(Application.objects.filter(id__in=app_ids).values_list("id", "name"))
    labels = {}
    for request in requests:
        if request.credential_id in keys:
            labels[request.credential_id] = Credential("api_key", keys[request.credential_id])
        elif request.application_id in apps:
            labels[request.credential_id] = Credential("oauth_app", apps[request.application_id])
    return labels


def deliveries_recent(*, organization_id: str, limit: int = 10) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(endpoint__organization_id=organization_id)
        .select_related("event", "endpoint")
        .order_by("-created_at", "-id")[:limit]
    )


# Accounts, keys and test transfers --------------------------------------------------------


def organization_accounts(*, organization_id: str, livemode: bool | None = None) -> list[Account]:
    """The organization's accounts in one mode, or in both (test mode first)."""
    modes = (False, True) if livemode is None else (livemode,)
    return [
        account
        for mode in modes
        for account in books.accounts_of(holder=organization_id, livemode=mode).order_by(
            "currency_id", "id"
        )
    ]


def api_keys_active(*, organization_id: str) -> list[APIKey]:
    """Keys that still authenticate: neither revoked nor expired. Newest first."""
    now = timezone.now()
    return list(
        APIKey.objects.filter(organization_id=organization_id, revoked_at=None)
        .filter(Q(expires_at=None) | Q(expires_at__gt=now))
        .order_by("-created_at")
    )


def sandbox_transfers_recent(*, organization_id: str, limit: int = 20) -> list[Transfer]:
    return list(
        Transfer.objects.filter(holder=organization_id, livemode=False).order_by("-id")[:limit]
    )


def sandbox_transfer_get(*, organization_id: str, transfer_id: str) -> Transfer | None:
    """One of the organization's test-mode transfers, or None: another organization's
    transfer and a live one are simply not there."""
    return Transfer.objects.filter(id=transfer_id, holder=organization_id, livemode=False).first()


# Events --------------------------------------------------------------------------------


def events_visible(
    *,
    organization_id: str,
    livemode: bool,
    account_ids: frozenset[str] | None,
    consent_id: str | None = None,
    application_id: str | None = None,
) -> QuerySet[Event]:
    """The organization's events in one mode. An OAuth token reaches only the accounts
    its user shared (`account_ids`; None is every account): an event whose object names
    accounts — a transfer's — is shown only if it names one of those, as the transfer
    itself is; an event about a webhook endpoint only if the endpoint was made under the
    token's grant (`consent_id`); an api_request.failed only if it counts the calls of
    the token's own application (`application_id`). `event_within_grant` is the same rule
    for one event."""
    events = Event.objects.filter(organization_id=organization_id, livemode=livemode)
    if account_ids is None:
        return events
    shared = sorted(account_ids)
    names_accounts = Q(data__object__has_key="source_account") | Q(
        data__object__has_key="destination_account"
    )
    names_a_shared_one = Q(data__object__source_account__in=shared) | Q(
        data__object__destination_account__in=shared
    )
    about_an_endpoint = Q(type__startswith=ENDPOINT_EVENT_PREFIX)
    own = list(
        WebhookEndpoint.objects.filter(consent_id=consent_id).values_list("id", flat=True)
        if consent_id
        else []
    )
    about_its_own = Q(data__object__id__in=own) | Q(data__webhook_endpoint__in=own)
    about_failures = Q(type=FAILURES_EVENT)
    its_failures = Q(data__object__application=application_id) if application_id else Q(pk=None)
    return events.filter(
        (~names_accounts & ~about_an_endpoint & ~about_failures)
        | (names_accounts & names_a_shared_one)
        | (about_an_endpoint & about_its_own)
        | (about_failures & its_failures)
    )


ENDPOINT_EVENT_PREFIX = "webhook_endpoint."
FAILURES_EVENT = "api_request.failed"


def event_within_grant(
    event: Event, *, account_ids: Iterable[str], endpoint_ids: Iterable[str], application_id: str
) -> bool:
    """Whether a grant to `application_id` sharing `account_ids`, under which
    `endpoint_ids` were made, may read `event`: the rule of `events_visible`, for one
    event in hand."""
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    found = data.get("object")
    thing: dict[str, Any] = found if isinstance(found, dict) else {}
    if event.type == FAILURES_EVENT:
        return thing.get("application") == application_id
    if event.type.startswith(ENDPOINT_EVENT_PREFIX):
        return bool({thing.get("id"), data.get("webhook_endpoint")} & set(endpoint_ids))
    named = [thing[key] for key in ("source_account", "destination_account") if key in thing]
    return not named or bool(set(named) & set(account_ids))


def endpoint_may_receive(endpoint: WebhookEndpoint, event: Event) -> bool:
    """Whether `endpoint` may be sent `event`: anything, if the organization made it with
    its own credentials; if it was made under an OAuth grant, what that grant may read
    (and nothing once the grant is revoked). Load endpoints with their `consent`."""
    if endpoint.consent_id is None:
        return True
    consent = endpoint.consent
    if consent is None or consent.revoked_at is not None:
        return False
    siblings: list[str] = []
    if event.type.startswith(ENDPOINT_EVENT_PREFIX):
        siblings = list(
            WebhookEndpoint.objects.filter(consent_id=consent.id).values_list("id", flat=True)
        )
    return event_within_grant(
        event,
        account_ids=consent.account_ids,
        endpoint_ids=siblings,
        application_id=consent.application_id,
    )
