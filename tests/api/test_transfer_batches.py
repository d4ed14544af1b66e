"""POST /v1/transfer_batches: up to 1,000 transfers in one request, all held or none."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import services as ledger
from ledger.models import Transfer
from tests.api.support import Api, Books, Party, balance, problem

pytestmark = pytest.mark.django_db


def item(party: Party, **fields: Any) -> dict[str, Any]:
    return {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 100,
        "currency": "USD",
        **fields,
    }


def test_a_batch_answers_201_with_every_transfer_pending_in_order(api: Api, alice: Party) -> None:
    response = api.post(
        "/v1/transfer_batches",
        {
            "transfers": [
                item(alice, amount=100, description="first"),
                item(alice, amount=200, settlement="manual"),
                item(alice, amount=50, metadata={"line": "3"}),
            ]
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)
    assert [(t["amount"], t["currency"], t["status"], t["settlement"]) for t in body["data"]] == [
        (100, "USD", "pending", "auto"),
        (200, "USD", "pending", "manual"),
        (50, "USD", "pending", "auto"),
    ]
    assert body["data"][0]["description"] == "first"
    assert body["data"][2]["metadata"] == {"line": "3"}
    assert Transfer.objects.filter(id__in=[t["id"] for t in body["data"]]).count() == 3


def test_a_batch_holds_the_sum_of_its_items(api: Api, alice: Party) -> None:
    api.post("/v1/transfer_batches", {"transfers": [item(alice, amount=n) for n in (1, 20, 300)]})
    assert balance(alice.usd) == (1_000_000, 321, 999_679)


def test_each_transfer_of_a_batch_reads_back_on_its_own(api: Api, alice: Party) -> None:
    made = api.post("/v1/transfer_batches", {"transfers": [item(alice), item(alice)]}).json()
    for transfer in made["data"]:
        assert api.get(f"/v1/transfers/{transfer['id']}").json() == transfer


def test_a_batch_whose_items_together_overspend_is_refused_whole(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches",
        {"transfers": [item(alice, amount=400_000)] * 3},
    )
    assert problem(response) == (402, "insufficient_funds", "transfers[2].amount")
    assert response.json()["detail"].startswith("transfers[2]: ")
    assert Books.now() == before


def test_an_invalid_amount_names_its_item(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches", {"transfers": [item(alice), item(alice, amount=10.5)]}
    )
    assert problem(response) == (400, "invalid_amount", "transfers[1].amount")
    assert Books.now() == before


def test_a_currency_mismatch_names_its_item(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches",
        {"transfers": [item(alice), item(alice), item(alice, currency="EUR")]},
    )
    assert problem(response) == (400, "currency_mismatch", "transfers[2].currency")
    assert Books.now() == before


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_an_account_that_does_not_exist_names_its_item(api: Api, alice: Party, side: str) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches",
        {"transfers": [item(alice), item(alice, **{side: "acct_00000000000000000000000000"})]},
    )
    assert problem(response) == (404, "not_found", f"transfers[1].{side}")
    assert Books.now() == before


def test_an_unknown_field_in_an_item_is_refused(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches", {"transfers": [item(alice), item(alice, status="settled")]}
    )
    assert problem(response) == (400, "validation_error", "transfers[1].status")
    assert Books.now() == before


def test_a_frozen_account_in_one_item_refuses_the_batch(api: Api, alice: Party) -> None:
    spare = ledger.account_open(holder=alice.holder, livemode=False, currency="USD")
    ledger.account_freeze(account_id=alice.payee.id)
    before = Books.now()
    response = api.post(
        "/v1/transfer_batches",
        {"transfers": [item(alice, destination_account=spare.id), item(alice)]},
    )
    assert problem(response) == (409, "account_frozen", "transfers[1].destination_account")
    assert Books.now() == before


@pytest.mark.parametrize(
    "body",
    [{}, {"transfers": []}, {"transfers": None}, {"transfers": "all"}, {"transfers": {}}],
    ids=["missing", "empty", "null", "string", "object"],
)
def test_a_batch_needs_a_list_of_at_least_one_transfer(
    api: Api, alice: Party, body: dict[str, Any]
) -> None:
    before = Books.now()
    assert problem(api.post("/v1/transfer_batches", body)) == (
        400,
        "validation_error",
        "transfers",
    )
    assert Books.now() == before


def test_a_batch_of_a_thousand_is_accepted(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfer_batches", {"transfers": [item(alice, amount=1)] * 1_000})
    assert response.status_code == 201
    assert len(response.json()["data"]) == 1_000
    assert balance(alice.usd) == (1_000_000, 1_000, 999_000)


def test_a_batch_of_a_thousand_and_one_is_refused(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post("/v1/transfer_batches", {"transfers": [item(alice, amount=1)] * 1_001})
    assert problem(response) == (400, "validation_error", "transfers")
    assert Books.now() == before
