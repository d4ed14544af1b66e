"""POST /v1/transfers/{id}/settle, /void and /reverse: each moves a transfer one step
along pending -> settled -> reversed, or pending -> voided, and refuses anything else."""

from __future__ import annotations

import pytest

from ledger import services as ledger
from ledger.models import Entry, Transfer
from tests.api.support import Api, Books, Party, balance, problem

pytestmark = pytest.mark.django_db


def manual(api: Api, party: Party, amount: int = 2_550) -> str:
    response = api.post(
        "/v1/transfers",
        {
            "source_account": party.usd.id,
            "destination_account": party.payee.id,
            "amount": amount,
            "currency": "USD",
            "settlement": "manual",
        },
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def settled(api: Api, party: Party, amount: int = 2_550) -> str:
    transfer = manual(api, party, amount)
    assert api.post(f"/v1/transfers/{transfer}/settle").status_code == 200
    return transfer


# Settle ------------------------------------------------------------------------------


def test_settling_posts_the_whole_hold(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    response = api.post(f"/v1/transfers/{transfer}/settle")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["settled_amount"], body["sequence"]) == (
        transfer,
        "settled",
        2_550,
        2,
    )
    assert balance(alice.usd) == (997_450, 0, 997_450)
    assert balance(alice.payee) == (2_550, 0, 2_550)


def test_a_settled_transfer_reads_back_settled(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    answered = api.post(f"/v1/transfers/{transfer}/settle").json()
    assert api.get(f"/v1/transfers/{transfer}").json() == answered


def test_a_partial_settlement_posts_less_and_releases_the_rest(api: Api, alice: Party) -> None:
    transfer = manual(api, alice, 5_000)
    body = api.post(f"/v1/transfers/{transfer}/settle", {"amount": 3_210}).json()
    assert (body["status"], body["amount"], body["settled_amount"]) == ("settled", 5_000, 3_210)
    assert balance(alice.usd) == (996_790, 0, 996_790)
    assert balance(alice.payee) == (3_210, 0, 3_210)


def test_settling_more_than_was_held_is_refused(api: Api, alice: Party) -> None:
    transfer = manual(api, alice, 5_000)
    before = Books.now()
    response = api.post(f"/v1/transfers/{transfer}/settle", {"amount": 5_001})
    assert problem(response) == (400, "amount_exceeds_hold", "amount")
    assert Books.now() == before


@pytest.mark.parametrize("amount", [0, -1, 10.5, "100", True])
def test_a_partial_amount_is_a_positive_integer(api: Api, alice: Party, amount: object) -> None:
    transfer = manual(api, alice)
    before = Books.now()
    response = api.post(f"/v1/transfers/{transfer}/settle", {"amount": amount})
    assert problem(response) == (400, "invalid_amount", "amount")
    assert Books.now() == before


def test_settling_twice_is_refused_with_409(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    before = Books.now()
    response = api.post(f"/v1/transfers/{transfer}/settle")
    assert problem(response) == (409, "transfer_not_pending", None)
    assert response.json()["detail"] == "the transfer is settled"
    assert Books.now() == before


def test_a_voided_transfer_cannot_be_settled(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    api.post(f"/v1/transfers/{transfer}/void")
    assert problem(api.post(f"/v1/transfers/{transfer}/settle")) == (
        409,
        "transfer_not_pending",
        None,
    )
    assert balance(alice.payee) == (0, 0, 0)


def test_settling_into_a_frozen_account_is_refused_and_the_hold_kept(
    api: Api, alice: Party
) -> None:
    transfer = manual(api, alice)
    ledger.account_freeze(account_id=alice.payee.id)
    response = api.post(f"/v1/transfers/{transfer}/settle")
    assert problem(response) == (409, "account_frozen", "destination_account")
    assert balance(alice.usd) == (1_000_000, 2_550, 997_450)
    ledger.account_unfreeze(account_id=alice.payee.id)
    assert api.post(f"/v1/transfers/{transfer}/settle").json()["status"] == "settled"


def test_settling_a_transfer_marked_to_fail_fails_it(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    api.post(f"/v1/test_helpers/transfers/{transfer}/fail")
    body = api.post(f"/v1/transfers/{transfer}/settle").json()
    assert (body["status"], body["failure_reason"], body["settled_amount"]) == (
        "failed",
        "test_helper",
        None,
    )
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)


def test_settle_accepts_no_other_field(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    response = api.post(f"/v1/transfers/{transfer}/settle", {"amount": 1, "currency": "USD"})
    assert problem(response) == (400, "validation_error", "currency")
    assert api.get(f"/v1/transfers/{transfer}").json()["status"] == "pending"


# Void --------------------------------------------------------------------------------


def test_voiding_releases_the_hold_and_posts_nothing(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    response = api.post(f"/v1/transfers/{transfer}/void")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["settled_amount"], body["sequence"]) == ("voided", None, 2)
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)
    assert not Entry.objects.filter(transfer_id=transfer).exists()


def test_an_auto_transfer_can_be_voided_before_the_worker_settles_it(
    api: Api, alice: Party
) -> None:
    transfer = api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 10,
            "currency": "USD",
        },
    ).json()["id"]
    assert api.post(f"/v1/transfers/{transfer}/void").json()["status"] == "voided"


def test_a_settled_transfer_cannot_be_voided(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    before = Books.now()
    assert problem(api.post(f"/v1/transfers/{transfer}/void")) == (
        409,
        "transfer_not_pending",
        None,
    )
    assert Books.now() == before


def test_voiding_twice_is_refused_with_409(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    api.post(f"/v1/transfers/{transfer}/void")
    assert problem(api.post(f"/v1/transfers/{transfer}/void")) == (
        409,
        "transfer_not_pending",
        None,
    )


def test_void_takes_no_fields(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    response = api.post(f"/v1/transfers/{transfer}/void", {"amount": 1})
    assert problem(response) == (400, "validation_error", "amount")
    assert api.get(f"/v1/transfers/{transfer}").json()["status"] == "pending"


def test_an_action_without_a_body_needs_no_content_type(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    response = api.request("POST", f"/v1/transfers/{transfer}/void", raw=b"", content_type="")
    assert response.status_code == 200
    assert response.json()["status"] == "voided"


# Reverse -----------------------------------------------------------------------------


def test_reversing_answers_with_the_original_now_reversed(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    response = api.post(f"/v1/transfers/{transfer}/reverse")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["settled_amount"], body["sequence"]) == (
        transfer,
        "reversed",
        2_550,
        3,
    )


def test_a_reversal_is_a_new_settled_transfer_the_other_way(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    api.post(f"/v1/transfers/{transfer}/reverse", {"description": "Refund of order 7"})
    newest = api.get("/v1/transfers").json()["data"][0]
    assert newest["id"] != transfer
    assert (
        newest["source_account"],
        newest["destination_account"],
        newest["amount"],
        newest["status"],
        newest["reversal_of"],
        newest["description"],
    ) == (alice.payee.id, alice.usd.id, 2_550, "settled", transfer, "Refund of order 7")


def test_a_reversal_gives_the_money_back(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    api.post(f"/v1/transfers/{transfer}/reverse")
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)
    assert balance(alice.payee) == (0, 0, 0)


def test_a_partially_settled_transfer_reverses_what_was_settled(api: Api, alice: Party) -> None:
    transfer = manual(api, alice, 5_000)
    api.post(f"/v1/transfers/{transfer}/settle", {"amount": 1_200})
    api.post(f"/v1/transfers/{transfer}/reverse")
    reversal = Transfer.objects.get(reversal_of_id=transfer)
    assert reversal.amount == 1_200
    assert balance(alice.usd) == (1_000_000, 0, 1_000_000)


def test_a_pending_transfer_cannot_be_reversed(api: Api, alice: Party) -> None:
    transfer = manual(api, alice)
    before = Books.now()
    assert problem(api.post(f"/v1/transfers/{transfer}/reverse")) == (
        409,
        "transfer_not_settled",
        None,
    )
    assert Books.now() == before


def test_reversing_twice_is_refused_with_409(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    api.post(f"/v1/transfers/{transfer}/reverse")
    before = Books.now()
    assert problem(api.post(f"/v1/transfers/{transfer}/reverse")) == (
        409,
        "transfer_not_settled",
        None,
    )
    assert Books.now() == before


def test_a_reversal_cannot_take_back_money_already_spent(api: Api, alice: Party) -> None:
    transfer = settled(api, alice)
    ledger.transfer_post(
        holder=alice.holder,
        livemode=False,
        source_id=alice.payee.id,
        destination_id=alice.usd.id,
        amount=2_000,
        currency="USD",
    )
    before = Books.now()
    response = api.post(f"/v1/transfers/{transfer}/reverse")
    assert problem(response) == (402, "insufficient_funds", "amount")
    assert Books.now() == before


@pytest.mark.parametrize("action", ["settle", "void", "reverse"])
def test_an_action_on_a_transfer_that_does_not_exist_is_not_found(api: Api, action: str) -> None:
    before = Books.now()
    response = api.post(f"/v1/transfers/tr_00000000000000000000000000/{action}")
    assert problem(response) == (404, "not_found", None)
    assert Books.now() == before
