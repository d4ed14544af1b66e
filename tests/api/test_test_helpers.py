"""POST /v1/test_helpers/...: test money and forced failures, for test mode only."""

from __future__ import annotations

import pytest

from ledger.models import Entry
from payments import services as payments
from tests.api.support import Api, Books, Party, balance, problem

pytestmark = pytest.mark.django_db


def pending(api: Api, party: Party, settlement: str = "auto") -> str:
    response = api.post(
        "/v1/transfers",
        {
            "source_account": party.usd.id,
            "destination_account": party.payee.id,
            "amount": 2_550,
            "currency": "USD",
            "settlement": settlement,
        },
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


# Fund --------------------------------------------------------------------------------


def test_funding_credits_the_account_and_answers_with_it(api: Api, alice: Party) -> None:
    response = api.post(f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": 5_000})
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["object"]) == (alice.payee.id, "account")
    assert body["balance"] == {
        "object": "balance",
        "account": alice.payee.id,
        "currency": "USD",
        "available": 5_000,
        "pending": 0,
        "posted": 5_000,
    }
    assert balance(alice.payee) == (5_000, 0, 5_000)


def test_funding_is_an_entry_in_the_accounts_history(api: Api, alice: Party) -> None:
    api.post(f"/v1/test_helpers/accounts/{alice.usd.id}/fund", {"amount": 1})
    [latest, _] = api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]
    assert (latest["amount"], latest["balance_after"], latest["sequence"]) == (1, 1_000_001, 2)


def test_funding_moves_money_from_the_platforms_test_source(api: Api, alice: Party) -> None:
    api.post(f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": 777})
    [entry] = Entry.objects.filter(account_id=alice.payee.id)
    [other_side] = Entry.objects.filter(transfer_id=entry.transfer_id).exclude(id=entry.id)
    assert other_side.amount == -777
    assert other_side.account.holder == "platform"


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100", True])
def test_funding_needs_a_positive_integer_amount(api: Api, alice: Party, amount: object) -> None:
    before = Books.now()
    response = api.post(f"/v1/test_helpers/accounts/{alice.usd.id}/fund", {"amount": amount})
    assert problem(response) == (400, "invalid_amount", "amount")
    assert Books.now() == before


def test_funding_an_account_that_does_not_exist_is_not_found(api: Api) -> None:
    response = api.post(
        "/v1/test_helpers/accounts/acct_00000000000000000000000000/fund", {"amount": 1}
    )
    assert problem(response) == (404, "not_found", None)


def test_funding_takes_no_other_field(api: Api, alice: Party) -> None:
    response = api.post(
        f"/v1/test_helpers/accounts/{alice.usd.id}/fund", {"amount": 1, "currency": "USD"}
    )
    assert problem(response) == (400, "validation_error", "currency")


def test_a_live_key_finds_no_test_helper(api: Api, alice: Party, alice_live_key: str) -> None:
    before = Books.now()
    response = api.using(alice_live_key).post(
        f"/v1/test_helpers/accounts/{alice.usd.id}/fund", {"amount": 1}
    )
    assert problem(response) == (404, "not_found", None)
    assert Books.now() == before


# Fail --------------------------------------------------------------------------------


def test_a_transfer_marked_to_fail_stays_pending_until_it_comes_to_settle(
    api: Api, alice: Party
) -> None:
    transfer = pending(api, alice)
    response = api.post(f"/v1/test_helpers/transfers/{transfer}/fail")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (transfer, "pending")
    assert balance(alice.usd) == (1_000_000, 2_550, 997_450)


def test_the_worker_fails_a_marked_transfer_and_releases_its_hold(api: Api, alice: Party) -> None:
    transfer = pending(api, alice)
    api.post(f"/v1/test_helpers/transfers/{transfer}/fail")
    run = payments.transfers_settle_due()
    assert (run.settled, run.failed) == (0, 1)
    body = api.get(f"/v1/transfers/{transfer}").json()
    assert (body["status"], body["failure_reason"], body["settled_amount"]) == (
        "failed",
        "test_helper",
        None,
    )
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)
    assert balance(alice.payee) == (0, 0, 0)


def test_a_settled_transfer_cannot_be_marked_to_fail(api: Api, alice: Party) -> None:
    transfer = pending(api, alice, settlement="manual")
    api.post(f"/v1/transfers/{transfer}/settle")
    response = api.post(f"/v1/test_helpers/transfers/{transfer}/fail")
    assert problem(response) == (409, "transfer_not_pending", None)


def test_failing_a_transfer_that_does_not_exist_is_not_found(api: Api) -> None:
    response = api.post("/v1/test_helpers/transfers/tr_00000000000000000000000000/fail")
    assert problem(response) == (404, "not_found", None)


def test_fail_takes_no_fields(api: Api, alice: Party) -> None:
    transfer = pending(api, alice)
    response = api.post(f"/v1/test_helpers/transfers/{transfer}/fail", {"reason": "why not"})
    assert problem(response) == (400, "validation_error", "reason")


def test_a_live_key_cannot_fail_a_transfer(api: Api, alice: Party, alice_live_key: str) -> None:
    transfer = pending(api, alice)
    response = api.using(alice_live_key).post(f"/v1/test_helpers/transfers/{transfer}/fail")
    assert problem(response) == (404, "not_found", None)
    payments.transfers_settle_due()
    assert api.get(f"/v1/transfers/{transfer}").json()["status"] == "settled"
