"""A request that crashes half-way leaves no effect and no idempotency record, so its
retry with the same key runs once, from scratch."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ledger.models import Transfer
from oauth import services as identity
from payments import services as payments
from payments.apis import transfers as transfer_api
from payments.models import IdempotencyRecord
from tests.factories import make_organization

pytestmark = pytest.mark.django_db


def test_a_crash_after_the_ledger_posting_rolls_it_back_and_the_retry_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = Client(raise_request_exception=False)
    organization = make_organization()
    [usd] = payments.sandbox_open(holder=organization.id, currencies=("USD",))
    [other] = payments.sandbox_open(holder=organization.id, currencies=("USD",))
    secret = identity.api_key_create(organization=organization, livemode=False).secret
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "order-7"}
    body = json.dumps(
        {
            "source_account": usd.id,
            "destination_account": other.id,
            "amount": 500,
            "currency": "USD",
        }
    )

    def crash(transfer: Transfer) -> dict[str, object]:
        raise RuntimeError("the process died while rendering")

    monkeypatch.setattr(transfer_api, "transfer_json", crash)
    crashed = client.post("/v1/transfers", body, content_type="application/json", headers=headers)
    assert crashed.status_code == 500
    assert crashed.json()["code"] == "internal_error"
    assert crashed.json()["request_id"] == crashed["Request-Id"]
    assert not Transfer.objects.filter(source=usd).exists(), "the hold was rolled back"
    assert not IdempotencyRecord.objects.exists(), "no record of a request that did not finish"
    usd.refresh_from_db()
    assert usd.held == 0

    monkeypatch.undo()
    retried = client.post("/v1/transfers", body, content_type="application/json", headers=headers)
    again = client.post("/v1/transfers", body, content_type="application/json", headers=headers)
    assert retried.status_code == 201
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == retried.content
    assert Transfer.objects.filter(source=usd).count() == 1
