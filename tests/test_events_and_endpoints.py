"""Events are written with the change that causes them, from every path that changes a
transfer, and fan out to the webhook endpoints that subscribe to them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Settlement
from oauth import services as identity
from oauth.models import Organization, Scope
from payments import services as payments
from payments import webhooks
from payments.models import Event, WebhookDelivery, WebhookEndpoint
from tests.factories import log_request, make_organization

pytestmark = pytest.mark.django_db


class Caller:
    def __init__(self, client: Client, organization: Organization, scopes: list[str] | None = None):
        self.client = client
        self.organization = organization
        self.secret = identity.api_key_create(
            organization=organization, livemode=False, scopes=scopes
        ).secret

    def get(self, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.secret}"})

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.generic(
            method,
            path,
            json.dumps(body or {}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.secret}"},
        )


@pytest.fixture
def alice(client: Client) -> Caller:
    return Caller(client, make_organization("Alice Ltd"))


@pytest.fixture
def accounts(alice: Caller) -> tuple[str, str]:
    usd, other = payments.sandbox_open(holder=alice.organization.id, currencies=("USD", "USD"))
    return usd.id, other.id


def types_of(organization: Organization) -> list[str]:
    return list(
        Event.objects.filter(organization=organization)
        .order_by("id")
        .values_list("type", flat=True)
    )


def pay(alice: Caller, accounts: tuple[str, str], **extra: Any) -> dict[str, Any]:
    source, destination = accounts
    answer = alice.send(
        "POST",
        "/v1/transfers",
        {
            "source_account": source,
            "destination_account": destination,
            "amount": 500,
            "currency": "USD",
            **extra,
        },
    )
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def test_every_change_of_a_transfer_is_an_event_with_its_object(
    alice: Caller, accounts: tuple[str, str]
) -> None:
    manual = pay(alice, accounts, settlement="manual")
    alice.send("POST", f"/v1/transfers/{manual['id']}/settle", {"amount": 300})
    alice.send("POST", f"/v1/transfers/{manual['id']}/reverse", {})
    voided = pay(alice, accounts, settlement="manual")
    alice.send("POST", f"/v1/transfers/{voided['id']}/void", {})
    assert types_of(alice.organization) == [
        "transfer.created",
        "transfer.settled",
        "transfer.reversed",
        "transfer.created",
        "transfer.voided",
    ]
    settled = Event.objects.get(type="transfer.settled")
    assert settled.data["object"]["id"] == manual["id"]
    assert settled.data["object"]["settled_amount"] == 300
    sequences = [
        e.data["object"]["sequence"]
        for e in Event.objects.filter(organization=alice.organization).order_by("id")
        if e.data["object"]["id"] == manual["id"]
    ]
    assert sequences == sorted(sequences), "receivers can order events by the sequence"


def test_the_workers_paths_record_events_too(alice: Caller, accounts: tuple[str, str]) -> None:
    auto = pay(alice, accounts)
    doomed = pay(alice, accounts)
    alice.send("POST", f"/v1/test_helpers/transfers/{doomed['id']}/fail", {})
    payments.transfers_settle_due()
    expiring = ledger.transfer_create(
        holder=alice.organization.id,
        livemode=False,
        source_id=accounts[0],
        destination_id=accounts[1],
        amount=1,
        currency="USD",
        settlement=Settlement.MANUAL,
        hold_expires_at=timezone.now() - dt.timedelta(seconds=1),
    ).transfer
    payments.transfers_expire_holds()
    by_object = {
        (e.data["object"]["id"], e.type)
        for e in Event.objects.filter(organization=alice.organization)
    }
    assert (auto["id"], "transfer.settled") in by_object
    assert (doomed["id"], "transfer.failed") in by_object
    assert (expiring.id, "transfer.voided") in by_object


def test_a_change_that_rolls_back_leaves_no_event(alice: Caller, accounts: tuple[str, str]) -> None:
    source, destination = accounts
    refused = alice.send(
        "POST",
        "/v1/transfers",
        {
            "source_account": source,
            "destination_account": destination,
            "amount": 10**15,
            "currency": "USD",
        },
    )
    assert refused.status_code == 402
    assert not Event.objects.exists()


def test_events_are_listed_newest_first_and_only_to_their_organization(
    client: Client, alice: Caller, accounts: tuple[str, str]
) -> None:
    first, second = pay(alice, accounts), pay(alice, accounts)
    listed = alice.get("/v1/events").json()["data"]
    assert [e["data"]["object"]["id"] for e in listed] == [second["id"], first["id"]]
    assert listed[0]["type"] == "transfer.created"
    charlie = Caller(client, make_organization("Charlie Co"))
    assert charlie.get("/v1/events").json()["data"] == []
    assert charlie.get(f"/v1/events/{listed[0]['id']}").status_code == 404
    assert alice.get(f"/v1/events/{listed[0]['id']}").json()["id"] == listed[0]["id"]
    reader = Caller(client, alice.organization, scopes=[Scope.ACCOUNTS_READ])
    assert reader.get("/v1/events").status_code == 403


def test_an_endpoint_shows_its_secret_once_and_rotates_it(alice: Caller) -> None:
    created = alice.send(
        "POST",
        "/v1/webhook_endpoints",
        {"url": "https://example.com/hooks", "enabled_events": ["transfer.settled"]},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert "secret" not in alice.get(f"/v1/webhook_endpoints/{body['id']}").json()
    rotated = alice.send("POST", f"/v1/webhook_endpoints/{body['id']}/rotate_secret", {}).json()
    assert rotated["secret"] != body["secret"]
    endpoint = WebhookEndpoint.objects.get(id=body["id"])
    assert endpoint.previous_secret == body["secret"], "the old secret signs beside it for 24 h"
    overlap_ends = endpoint.previous_secret_expires_at
    assert overlap_ends is not None
    assert overlap_ends > timezone.now() + dt.timedelta(hours=23)
    disabled = alice.send("PATCH", f"/v1/webhook_endpoints/{body['id']}", {"status": "disabled"})
    assert disabled.json()["status"] == "disabled"
    assert alice.send("DELETE", f"/v1/webhook_endpoints/{body['id']}").status_code == 204


def test_deliveries_are_owed_to_subscribed_enabled_endpoints_only(
    alice: Caller, accounts: tuple[str, str]
) -> None:
    def endpoint(events: list[str]) -> WebhookEndpoint:
        return webhooks.webhook_endpoint_create(
            organization_id=alice.organization.id,
            livemode=False,
            url="https://example.com/hooks",
            enabled_events=events,
        )

    everything, settled_only = endpoint(["*"]), endpoint(["transfer.settled"])
    off = endpoint(["*"])
    webhooks.webhook_endpoint_update(endpoint=off, status="disabled")
    pay(alice, accounts)
    owed = {(d.endpoint_id, d.event.type) for d in WebhookDelivery.objects.select_related("event")}
    assert owed == {(everything.id, "transfer.created")}
    assert settled_only.id not in {endpoint_id for endpoint_id, _ in owed}
    deliveries = alice.get(f"/v1/webhook_endpoints/{everything.id}/deliveries").json()["data"]
    assert [d["status"] for d in deliveries] == ["pending"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://192.168.1.1/",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "http:///nohost",
        "http://[fe80::1]/hook",
    ],
)
def test_an_endpoint_url_that_points_inward_is_refused(alice: Caller, url: str) -> None:
    answer = alice.send("POST", "/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
    assert answer.status_code == 400
    assert answer.json()["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_loopback_targets_need_the_development_setting(alice: Caller, settings: Any) -> None:
    body = {"url": "http://127.0.0.1:9999/hook", "enabled_events": ["*"]}
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    assert alice.send("POST", "/v1/webhook_endpoints", body).status_code == 400
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    assert alice.send("POST", "/v1/webhook_endpoints", body).status_code == 201


def test_another_organizations_endpoint_is_not_found(client: Client, alice: Caller) -> None:
    endpoint = webhooks.webhook_endpoint_create(
        organization_id=alice.organization.id,
        livemode=False,
        url="https://example.com/hooks",
        enabled_events=["*"],
    )
    charlie = Caller(client, make_organization("Charlie Co"))
    for method, path in [
        ("GET", f"/v1/webhook_endpoints/{endpoint.id}"),
        ("PATCH", f"/v1/webhook_endpoints/{endpoint.id}"),
        ("DELETE", f"/v1/webhook_endpoints/{endpoint.id}"),
        ("POST", f"/v1/webhook_endpoints/{endpoint.id}/rotate_secret"),
        ("GET", f"/v1/webhook_endpoints/{endpoint.id}/deliveries"),
    ]:
        answer = charlie.get(path) if method == "GET" else charlie.send(method, path, {})
        assert answer.status_code == 404, (method, path)
    assert WebhookEndpoint.objects.filter(id=endpoint.id, status="enabled").exists()


def test_failed_api_requests_are_reported_once_a_minute_with_their_count(
    alice: Caller,
) -> None:
    from payments.events import api_failures_report

    minute = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    failures = [("insufficient_funds", 402)] * 3 + [("not_found", 404), ("", 200)]
    for index, (code, status) in enumerate(failures):
        at = minute + dt.timedelta(seconds=index)
        log_request(alice.organization, status=status, error_code=code, at=at)
    events = api_failures_report(minute=minute)
    reported = {e.data["object"]["error_code"]: e.data["object"]["count"] for e in events}
    assert reported == {"insufficient_funds": 3, "not_found": 1}
    assert {e.type for e in events} == {"api_request.failed"}
    assert api_failures_report(minute=minute) == [], "each minute is reported once"


def test_events_are_kept_90_days(alice: Caller, accounts: tuple[str, str]) -> None:
    from payments.events import events_purge

    pay(alice, accounts)
    old = pay(alice, accounts)
    Event.objects.filter(data__object__id=old["id"]).update(
        created_at=timezone.now() - dt.timedelta(days=91)
    )
    assert events_purge() == 1
    assert Event.objects.count() == 1
