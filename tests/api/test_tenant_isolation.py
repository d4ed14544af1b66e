"""Organizations never see each other. Charlie's key gets `404 not_found` for every one
of alice's accounts and transfers, wherever he names them (in the path or in a body),
exactly as for ids that do not exist, and nothing of alice's changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger import services as ledger
from ledger.models import Settlement
from tests.api.support import Api, Books, Party, problem

pytestmark = pytest.mark.django_db

NO_SUCH_ACCOUNT = "acct_00000000000000000000000000"
NO_SUCH_TRANSFER = "tr_00000000000000000000000000"


@pytest.fixture
def alices_transfers(alice: Party) -> dict[str, str]:
    """One of alice's transfers in each state an action can meet."""

    def make(settlement: Settlement = Settlement.MANUAL) -> str:
        return ledger.transfer_create(
            holder=alice.holder,
            livemode=False,
            source_id=alice.usd.id,
            destination_id=alice.payee.id,
            amount=1_000,
            currency="USD",
            settlement=settlement,
        ).transfer.id

    pending, settled, auto = make(), make(), make(Settlement.AUTO)
    ledger.transfer_settle(transfer_id=settled)
    return {"pending": pending, "settled": settled, "auto": auto}


@pytest.fixture
def charlies_api(api: Api, charlie: Party) -> Api:
    return api.using(charlie.secret)


def account_paths(account_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"/v1/accounts/{account_id}", None),
        ("GET", f"/v1/accounts/{account_id}/balance", None),
        ("GET", f"/v1/accounts/{account_id}/transactions", None),
        ("POST", f"/v1/test_helpers/accounts/{account_id}/fund", {"amount": 1_000_000}),
    ]


def transfer_paths(transfer_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"/v1/transfers/{transfer_id}", None),
        ("POST", f"/v1/transfers/{transfer_id}/settle", {}),
        ("POST", f"/v1/transfers/{transfer_id}/settle", {"amount": 1}),
        ("POST", f"/v1/transfers/{transfer_id}/void", {}),
        ("POST", f"/v1/transfers/{transfer_id}/reverse", {}),
        ("POST", f"/v1/test_helpers/transfers/{transfer_id}/fail", {}),
    ]


def without_request_id(response: Any) -> dict[str, Any]:
    body = dict(json.loads(response.content))
    body.pop("request_id")
    return body


@pytest.mark.parametrize("which", ["usd", "eur", "payee"])
def test_none_of_alices_accounts_exists_for_charlie(
    charlies_api: Api, alice: Party, which: str
) -> None:
    account_id = getattr(alice, which).id
    before = Books.now()
    for method, path, body in account_paths(account_id):
        response = charlies_api.request(method, path, body)
        assert problem(response) == (404, "not_found", None), (method, path)
    assert Books.now() == before


@pytest.mark.parametrize("state", ["pending", "settled", "auto"])
def test_none_of_alices_transfers_exists_for_charlie(
    charlies_api: Api, alices_transfers: dict[str, str], state: str
) -> None:
    before = Books.now()
    for method, path, body in transfer_paths(alices_transfers[state]):
        response = charlies_api.request(method, path, body)
        assert problem(response) == (404, "not_found", None), (method, path)
    assert Books.now() == before


def test_alices_account_answers_exactly_as_an_account_that_does_not_exist(
    charlies_api: Api, alice: Party
) -> None:
    for (method, path, body), (_, made_up, _) in zip(
        account_paths(alice.usd.id), account_paths(NO_SUCH_ACCOUNT), strict=True
    ):
        assert without_request_id(charlies_api.request(method, path, body)) == without_request_id(
            charlies_api.request(method, made_up, body)
        ), path


def test_alices_transfer_answers_exactly_as_a_transfer_that_does_not_exist(
    charlies_api: Api, alices_transfers: dict[str, str]
) -> None:
    for (method, path, body), (_, made_up, _) in zip(
        transfer_paths(alices_transfers["pending"]), transfer_paths(NO_SUCH_TRANSFER), strict=True
    ):
        assert without_request_id(charlies_api.request(method, path, body)) == without_request_id(
            charlies_api.request(method, made_up, body)
        ), path


def test_charlies_lists_hold_only_his_own(
    charlies_api: Api, charlie: Party, alices_transfers: dict[str, str]
) -> None:
    accounts = charlies_api.get("/v1/accounts").json()["data"]
    assert {a["id"] for a in accounts} == {charlie.usd.id, charlie.eur.id, charlie.payee.id}
    assert charlies_api.get("/v1/transfers").json()["data"] == []


def test_charlie_cannot_pay_from_alices_account(
    charlies_api: Api, alice: Party, charlie: Party
) -> None:
    before = Books.now()
    response = charlies_api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": charlie.payee.id,
            "amount": 1_000,
            "currency": "USD",
        },
    )
    assert problem(response) == (404, "not_found", "source_account")
    assert Books.now() == before


def test_charlie_cannot_pay_into_alices_account(
    charlies_api: Api, alice: Party, charlie: Party
) -> None:
    before = Books.now()
    response = charlies_api.post(
        "/v1/transfers",
        {
            "source_account": charlie.usd.id,
            "destination_account": alice.payee.id,
            "amount": 1_000,
            "currency": "USD",
        },
    )
    assert problem(response) == (404, "not_found", "destination_account")
    assert Books.now() == before


def test_paying_from_alices_account_answers_as_an_account_that_does_not_exist(
    charlies_api: Api, alice: Party, charlie: Party
) -> None:
    def attempt(source: str) -> dict[str, Any]:
        return without_request_id(
            charlies_api.post(
                "/v1/transfers",
                {
                    "source_account": source,
                    "destination_account": charlie.payee.id,
                    "amount": 10_000_000,
                    "currency": "EUR",
                },
            )
        )

    assert attempt(alice.usd.id) == attempt(NO_SUCH_ACCOUNT)


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_charlie_cannot_name_alices_account_in_a_batch(
    charlies_api: Api, alice: Party, charlie: Party, side: str
) -> None:
    own = {
        "source_account": charlie.usd.id,
        "destination_account": charlie.payee.id,
        "amount": 1_000,
        "currency": "USD",
    }
    foreign = {**own, side: alice.usd.id if side == "source_account" else alice.payee.id}
    before = Books.now()
    response = charlies_api.post("/v1/transfer_batches", {"transfers": [own, foreign]})
    assert problem(response) == (404, "not_found", f"transfers[1].{side}")
    assert Books.now() == before


def test_alice_cannot_pay_into_charlies_account_either(
    api: Api, alice: Party, charlie: Party
) -> None:
    before = Books.now()
    response = api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": charlie.payee.id,
            "amount": 1_000,
            "currency": "USD",
        },
    )
    assert problem(response) == (404, "not_found", "destination_account")
    assert Books.now() == before


def test_a_restricted_key_of_alices_sees_nothing_of_charlies(
    api: Api, restricted_key: str, charlie: Party
) -> None:
    reader = api.using(restricted_key)
    for method, path, _ in account_paths(charlie.usd.id)[:3]:
        assert problem(reader.request(method, path)) == (404, "not_found", None), path
