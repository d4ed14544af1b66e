"""Webhook endpoints made through an OAuth token belong to the user's grant: only that
grant sees and manages them, they are sent only what the grant may read (transfers on
the shared accounts, its own endpoints' events), and nothing once the grant is revoked.
The organization's own credentials see every endpoint, these included."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Settlement
from oauth import services as identity
from oauth.models import Consent, Scope
from payments import services as payments
from payments import webhooks
from payments.models import Event, WebhookDelivery, WebhookEndpoint
from tests.api.support import Party
from tests.attacks.support import oauth_token
from tests.factories import log_request

pytestmark = pytest.mark.django_db
URL = "https://hooks.example.com/app"


@pytest.fixture
def token(alice: Party) -> str:
    """alice grants an application every scope on her USD account and payee only."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        return oauth_token(
            user=alice.user,
            organization=alice.organization,
            account_ids=[alice.usd.id, alice.payee.id],
            scopes=list(Scope.values),
        )


def call(credential: str, method: str, path: str, body: Any = None) -> Any:
    return getattr(Client(), method)(
        path,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers={"Authorization": f"Bearer {credential}"},
    )


def transfer(alice: Party, source: str, destination: str, currency: str = "USD") -> str:
    made = payments.transfer_create(
        organization_id=alice.holder,
        livemode=False,
        spec=ledger.TransferSpec(source, destination, 100, currency, Settlement.MANUAL),
    )
    return made.id


def owed(endpoint_id: str) -> set[str]:
    """The ids of the transfers whose events `endpoint_id` is owed."""
    return {
        d.event.data["object"]["id"]
        for d in WebhookDelivery.objects.filter(endpoint_id=endpoint_id).select_related("event")
    }


def test_a_grants_endpoint_is_sent_only_what_the_grant_may_read(alice: Party, token: str) -> None:
    made = call(token, "post", "/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"]})
    assert made.status_code == 201, made.content
    apps = made.json()["id"]
    own = webhooks.webhook_endpoint_create(
        organization_id=alice.holder, livemode=False, url=URL, enabled_events=["*"]
    )
    unshared = ledger.account_open(holder=alice.holder, livemode=False, currency="EUR")
    shared_transfer = transfer(alice, alice.usd.id, alice.payee.id)
    unshared_transfer = transfer(alice, alice.eur.id, unshared.id, "EUR")
    assert owed(apps) == {shared_transfer}
    assert owed(own.id) == {shared_transfer, unshared_transfer}

    # Replays and redeliveries keep to the same rule.
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    replay = call(token, "post", f"/v1/webhook_endpoints/{apps}/replay", {"since": since})
    assert (replay.status_code, replay.json()["deliveries"]) == (202, 1)
    assert owed(apps) == {shared_transfer}
    hidden_event = Event.objects.get(data__object__id=unshared_transfer)
    before = WebhookDelivery.objects.count()
    refused = call(
        alice.secret, "post", f"/v1/events/{hidden_event.id}/redeliver", {"webhook_endpoint": apps}
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["param"] == "webhook_endpoint"
    everyone = call(alice.secret, "post", f"/v1/events/{hidden_event.id}/redeliver", {})
    assert [d["webhook_endpoint"] for d in everyone.json()["data"]] == [own.id]
    assert WebhookDelivery.objects.count() == before + 1


def test_a_grant_manages_only_its_own_endpoints_and_the_organization_sees_all(
    alice: Party, token: str
) -> None:
    apps = call(token, "post", "/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"]})
    apps_id = apps.json()["id"]
    own = webhooks.webhook_endpoint_create(
        organization_id=alice.holder, livemode=False, url=URL, enabled_events=["*"]
    )
    listed = call(token, "get", "/v1/webhook_endpoints").json()["data"]
    assert [e["id"] for e in listed] == [apps_id]
    for method, suffix in [("get", ""), ("patch", ""), ("delete", ""), ("get", "/deliveries")]:
        answer = call(
            token,
            method,
            f"/v1/webhook_endpoints/{own.id}{suffix}",
            {} if method == "patch" else None,
        )
        assert answer.status_code == 404, (method, suffix, answer.content)
    assert WebhookEndpoint.objects.filter(id=own.id).exists()
    by_key = call(alice.secret, "get", "/v1/webhook_endpoints").json()["data"]
    assert {e["id"] for e in by_key} == {apps_id, own.id}
    assert WebhookEndpoint.objects.get(id=apps_id).consent == Consent.objects.get(
        user=alice.user, revoked_at=None
    )


def test_endpoint_events_are_shown_to_the_grant_that_made_the_endpoint_only(
    alice: Party, token: str
) -> None:
    from payments.events import NewEvent, events_record
    from payments.representations import webhook_endpoint_json

    apps_id = call(
        token, "post", "/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"]}
    ).json()["id"]
    own = webhooks.webhook_endpoint_create(
        organization_id=alice.holder, livemode=False, url=URL, enabled_events=["*"]
    )
    events_record(
        [
            NewEvent(alice.holder, False, "webhook_endpoint.disabled", webhook_endpoint_json(e))
            for e in (own, WebhookEndpoint.objects.get(id=apps_id))
        ]
    )
    shown = call(token, "get", "/v1/events").json()["data"]
    assert [e["data"]["object"]["id"] for e in shown] == [apps_id]
    assert len(call(alice.secret, "get", "/v1/events").json()["data"]) == 2
    about_own = Event.objects.get(data__object__id=own.id)
    assert not WebhookDelivery.objects.filter(event=about_own, endpoint_id=apps_id).exists()


def test_a_revoked_grants_endpoints_are_sent_nothing(alice: Party, token: str) -> None:
    apps_id = call(
        token, "post", "/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"]}
    ).json()["id"]
    transfer(alice, alice.usd.id, alice.payee.id)
    assert WebhookDelivery.objects.filter(endpoint_id=apps_id).count() == 1
    identity.consent_revoke(consent=Consent.objects.get(user=alice.user, revoked_at=None))
    transfer(alice, alice.usd.id, alice.payee.id)
    assert WebhookDelivery.objects.filter(endpoint_id=apps_id).count() == 1
    assert call(token, "get", "/v1/webhook_endpoints").status_code == 401


def test_a_grant_hears_only_of_its_own_applications_failed_calls(alice: Party, token: str) -> None:
    from payments.events import api_failures_report

    apps_id = call(
        token, "post", "/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"]}
    ).json()["id"]
    own = webhooks.webhook_endpoint_create(
        organization_id=alice.holder, livemode=False, url=URL, enabled_events=["*"]
    )
    application = Consent.objects.get(user=alice.user, revoked_at=None).application_id
    minute = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    # Two failed calls by the application, one by a key of no application.
    for index, by in enumerate([application, application, ""]):
        at = minute + dt.timedelta(seconds=index)
        log_request(
            alice.organization,
            status=402,
            error_code="insufficient_funds",
            at=at,
            application_id=by,
        )
    events = api_failures_report(minute=minute)
    assert {e.data["object"]["application"]: e.data["object"]["count"] for e in events} == {
        application: 2,
        None: 1,
    }
    assert api_failures_report(minute=minute) == [], "each group is reported once"

    def failures(credential: str) -> list[Any]:
        listed = call(credential, "get", "/v1/events").json()["data"]
        return sorted(
            (e["data"]["object"]["application"] or "", e["data"]["object"]["count"])
            for e in listed
            if e["type"] == "api_request.failed"
        )

    assert failures(token) == [(application, 2)]
    assert failures(alice.secret) == [("", 1), (application, 2)]
    theirs = next(e for e in events if e.data["object"]["application"] is None)
    assert call(token, "get", f"/v1/events/{theirs.id}").status_code == 404

    def sent(endpoint_id: str) -> list[Any]:
        return sorted(
            d.event.data["object"]["application"] or ""
            for d in WebhookDelivery.objects.filter(endpoint_id=endpoint_id).select_related("event")
        )

    assert sent(apps_id) == [application]
    assert sent(own.id) == ["", application]
