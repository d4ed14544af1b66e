"""POST/GET /v1/transfers and GET /v1/transfers/{id}: a transfer holds its amount on
the source at once and answers 201 `pending`."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import services as ledger
from ledger.models import Transfer
from payments import services as payments
from tests.api.support import Api, Books, Party, balance, problem, rfc3339

pytestmark = pytest.mark.django_db


def payment(party: Party, **fields: Any) -> dict[str, Any]:
    return {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 2_550,
        "currency": "USD",
        **fields,
    }


def test_a_transfer_answers_201_pending_with_every_field(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice))
    assert response.status_code == 201
    body = response.json()
    transfer = Transfer.objects.get(id=body["id"])
    assert body == {
        "id": transfer.id,
        "object": "transfer",
        "source_account": alice.usd.id,
        "destination_account": alice.payee.id,
        "amount": 2_550,
        "settled_amount": None,
        "currency": "USD",
        "status": "pending",
        "settlement": "auto",
        "description": "",
        "metadata": {},
        "failure_reason": None,
        "reversal_of": None,
        "livemode": False,
        "sequence": 1,
        "created_at": rfc3339(transfer.created_at),
        "updated_at": rfc3339(transfer.updated_at),
    }
    assert transfer.id.startswith("tr_")


def test_the_amount_is_held_on_the_source_at_once(api: Api, alice: Party) -> None:
    api.post("/v1/transfers", payment(alice))
    assert balance(alice.usd) == (1_000_000, 2_550, 997_450)
    assert balance(alice.payee) == (0, 0, 0)


def test_description_metadata_and_manual_settlement_are_kept(api: Api, alice: Party) -> None:
    body = api.post(
        "/v1/transfers",
        payment(
            alice,
            description="Order 1042",
            metadata={"order": "1042", "channel": "web"},
            settlement="manual",
        ),
    ).json()
    assert (body["description"], body["metadata"], body["settlement"]) == (
        "Order 1042",
        {"order": "1042", "channel": "web"},
        "manual",
    )


def test_a_transfer_reads_back_as_it_was_created(api: Api, alice: Party) -> None:
    created = api.post("/v1/transfers", payment(alice, description="rent")).json()
    response = api.get(f"/v1/transfers/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_the_list_holds_the_callers_transfers_newest_first(api: Api, alice: Party) -> None:
    ids = [api.post("/v1/transfers", payment(alice, amount=n)).json()["id"] for n in (1, 2, 3)]
    body = api.get("/v1/transfers").json()
    assert [t["id"] for t in body["data"]] == ids[::-1]
    assert [t["amount"] for t in body["data"]] == [3, 2, 1]
    assert (body["has_more"], body["next_cursor"]) == (False, None)


def test_an_auto_transfer_is_settled_by_the_worker(api: Api, alice: Party) -> None:
    created = api.post("/v1/transfers", payment(alice)).json()
    payments.transfers_settle_due()
    settled = api.get(f"/v1/transfers/{created['id']}").json()
    assert (settled["status"], settled["settled_amount"], settled["sequence"]) == (
        "settled",
        2_550,
        2,
    )
    assert balance(alice.usd) == (997_450, 0, 997_450)
    assert balance(alice.payee) == (2_550, 0, 2_550)


def test_a_manual_transfer_waits_for_the_caller(api: Api, alice: Party) -> None:
    created = api.post("/v1/transfers", payment(alice, settlement="manual")).json()
    payments.transfers_settle_due()
    assert api.get(f"/v1/transfers/{created['id']}").json()["status"] == "pending"


def test_an_auto_transfer_to_an_account_frozen_meanwhile_fails_and_releases_its_hold(
    api: Api, alice: Party
) -> None:
    created = api.post("/v1/transfers", payment(alice)).json()
    ledger.account_freeze(account_id=alice.payee.id)
    payments.transfers_settle_due()
    failed = api.get(f"/v1/transfers/{created['id']}").json()
    assert (failed["status"], failed["failure_reason"], failed["settled_amount"]) == (
        "failed",
        "account_frozen",
        None,
    )
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)


def test_spending_everything_available_is_allowed(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, amount=1_000_000))
    assert response.status_code == 201
    assert balance(alice.usd) == (1_000_000, 1_000_000, 0)


def test_one_minor_unit_more_than_available_is_refused_with_402(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, amount=1_000_001))
    assert problem(response) == (402, "insufficient_funds", "amount")
    assert Books.now() == before


def test_held_money_is_not_available_to_a_second_transfer(api: Api, alice: Party) -> None:
    api.post("/v1/transfers", payment(alice, amount=600_000))
    response = api.post("/v1/transfers", payment(alice, amount=400_001))
    assert problem(response) == (402, "insufficient_funds", "amount")
    assert balance(alice.usd) == (1_000_000, 600_000, 400_000)


def test_the_currency_must_be_the_accounts(api: Api, alice: Party) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, currency="EUR"))
    assert problem(response) == (400, "currency_mismatch", "currency")
    assert Books.now() == before


def test_accounts_in_two_currencies_cannot_trade(api: Api, alice: Party) -> None:
    response = api.post(
        "/v1/transfers",
        payment(alice, source_account=alice.eur.id, currency="EUR"),
    )
    assert problem(response) == (400, "currency_mismatch", "currency")


def test_an_account_cannot_pay_itself(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, destination_account=alice.usd.id))
    assert problem(response) == (400, "same_account", "destination_account")


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_an_account_that_does_not_exist_is_not_found_and_named(
    api: Api, alice: Party, side: str
) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, **{side: "acct_0000000000000000000000000"}))
    assert problem(response) == (404, "not_found", side)
    assert Books.now() == before


def test_a_frozen_destination_is_refused_with_409(api: Api, alice: Party) -> None:
    ledger.account_freeze(account_id=alice.payee.id)
    response = api.post("/v1/transfers", payment(alice))
    assert problem(response) == (409, "account_frozen", "destination_account")
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)


def test_a_frozen_source_is_refused_with_409(api: Api, alice: Party) -> None:
    ledger.account_freeze(account_id=alice.usd.id)
    response = api.post("/v1/transfers", payment(alice))
    assert problem(response) == (409, "account_frozen", "source_account")


def test_a_closed_destination_is_refused_with_409(api: Api, alice: Party) -> None:
    ledger.account_close(account_id=alice.payee.id)
    response = api.post("/v1/transfers", payment(alice))
    assert problem(response) == (409, "account_closed", "destination_account")


def test_every_missing_required_field_is_named(api: Api) -> None:
    response = api.post("/v1/transfers", {})
    assert problem(response) == (400, "validation_error", None)
    assert [(e["param"], e["code"]) for e in response.json()["errors"]] == [
        ("source_account", "required"),
        ("destination_account", "required"),
        ("amount", "required"),
        ("currency", "required"),
    ]


@pytest.mark.parametrize("settlement", ["later", "AUTO", "", None, 1])
def test_settlement_is_auto_or_manual(api: Api, alice: Party, settlement: object) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, settlement=settlement))
    assert problem(response) == (400, "validation_error", "settlement")
    assert Books.now() == before


def test_a_description_longer_than_500_characters_is_refused(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, description="d" * 501))
    assert problem(response) == (400, "validation_error", "description")


@pytest.mark.parametrize("account", [123, None, ["acct_x"], {"id": "acct_x"}])
def test_account_ids_must_be_strings(api: Api, alice: Party, account: object) -> None:
    response = api.post("/v1/transfers", payment(alice, source_account=account))
    assert problem(response) == (400, "validation_error", "source_account")


@pytest.mark.parametrize("transfer_id", ["tr_00000000000000000000000000", "nope", "%00"])
def test_a_transfer_that_does_not_exist_is_not_found(api: Api, transfer_id: str) -> None:
    response = api.get(f"/v1/transfers/{transfer_id}")
    assert problem(response) == (404, "not_found", None)
    assert response.json()["detail"] == "No such transfer."
