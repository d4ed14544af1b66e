"""Scopes: a restricted key does only what it was given. A missing scope is a 403
`insufficient_scope`, decided before the request is read, so it reveals nothing."""

from __future__ import annotations

import pytest

from ledger import services as ledger
from ledger.models import Settlement
from oauth import services as identity
from oauth.models import Scope
from tests.api.support import Api, Books, Party, problem

pytestmark = pytest.mark.django_db


def key_with(party: Party, *scopes: str) -> str:
    return identity.api_key_create(
        organization=party.organization, livemode=False, scopes=list(scopes)
    ).secret


@pytest.fixture
def transfer(alice: Party) -> str:
    """A pending manual transfer of alice's."""
    return ledger.transfer_create(
        holder=alice.holder,
        livemode=False,
        source_id=alice.usd.id,
        destination_id=alice.payee.id,
        amount=500,
        currency="USD",
        settlement=Settlement.MANUAL,
    ).transfer.id


def every_transfer_post(party: Party, transfer: str) -> list[tuple[str, dict[str, object]]]:
    payment = {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 100,
        "currency": "USD",
    }
    return [
        ("/v1/transfers", payment),
        (f"/v1/transfers/{transfer}/settle", {}),
        (f"/v1/transfers/{transfer}/settle", {"amount": 1}),
        (f"/v1/transfers/{transfer}/void", {}),
        (f"/v1/transfers/{transfer}/reverse", {}),
        ("/v1/transfer_batches", {"transfers": [payment]}),
        (f"/v1/test_helpers/accounts/{party.usd.id}/fund", {"amount": 100}),
        (f"/v1/test_helpers/transfers/{transfer}/fail", {}),
    ]


def every_read(party: Party, transfer: str) -> list[tuple[str, str]]:
    """(path, the scope it needs)."""
    return [
        ("/v1/accounts", Scope.ACCOUNTS_READ),
        (f"/v1/accounts/{party.usd.id}", Scope.ACCOUNTS_READ),
        (f"/v1/accounts/{party.usd.id}/balance", Scope.ACCOUNTS_READ),
        (f"/v1/accounts/{party.usd.id}/transactions", Scope.TRANSACTIONS_READ),
        ("/v1/transfers", Scope.TRANSFERS_READ),
        (f"/v1/transfers/{transfer}", Scope.TRANSFERS_READ),
    ]


def test_a_read_only_key_gets_403_on_every_transfer_post(
    api: Api, alice: Party, restricted_key: str, transfer: str
) -> None:
    reader = api.using(restricted_key)
    before = Books.now()
    for path, body in every_transfer_post(alice, transfer):
        response = reader.post(path, body)
        assert problem(response) == (403, "insufficient_scope", None), path
        assert response.json()["detail"] == "This credential lacks the `transfers:write` scope."
    assert Books.now() == before


def test_a_read_only_key_cannot_open_an_account(
    api: Api, alice: Party, restricted_key: str
) -> None:
    before = Books.now()
    response = api.using(restricted_key).post("/v1/accounts", {"currency": "USD"})
    assert problem(response) == (403, "insufficient_scope", None)
    assert response.json()["detail"] == "This credential lacks the `accounts:write` scope."
    assert Books.now() == before


def test_a_read_only_key_reads_everything(
    api: Api, alice: Party, restricted_key: str, transfer: str
) -> None:
    for path, _ in every_read(alice, transfer):
        assert api.using(restricted_key).get(path).status_code == 200, path


def test_a_key_that_may_only_write_transfers_reads_nothing(
    api: Api, alice: Party, transfer: str
) -> None:
    writer = api.using(key_with(alice, Scope.TRANSFERS_WRITE))
    for path, scope in every_read(alice, transfer):
        response = writer.get(path)
        assert problem(response) == (403, "insufficient_scope", None), path
        assert response.json()["detail"] == f"This credential lacks the `{scope}` scope."


def test_a_key_that_may_only_write_transfers_makes_them(api: Api, alice: Party) -> None:
    writer = api.using(key_with(alice, Scope.TRANSFERS_WRITE))
    response = writer.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 100,
            "currency": "USD",
        },
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (Scope.ACCOUNTS_READ, {"/v1/accounts", "account", "balance"}),
        (Scope.TRANSACTIONS_READ, {"transactions"}),
        (Scope.TRANSFERS_READ, {"/v1/transfers", "transfer"}),
        (Scope.WEBHOOKS_MANAGE, set()),
        (Scope.EVENTS_READ, set()),
    ],
)
def test_each_read_scope_opens_exactly_its_own_reads(
    api: Api, alice: Party, transfer: str, scope: str, allowed: set[str]
) -> None:
    names = ["/v1/accounts", "account", "balance", "transactions", "/v1/transfers", "transfer"]
    client = api.using(key_with(alice, scope))
    opened = {
        name
        for name, (path, _) in zip(names, every_read(alice, transfer), strict=True)
        if client.get(path).status_code == 200
    }
    assert opened == allowed


def test_accounts_write_alone_opens_accounts_but_reads_none(api: Api, alice: Party) -> None:
    opener = api.using(key_with(alice, Scope.ACCOUNTS_WRITE))
    assert opener.post("/v1/accounts", {"currency": "USD"}).status_code == 201
    assert problem(opener.get("/v1/accounts")) == (403, "insufficient_scope", None)


def test_the_scope_is_checked_before_the_body_is_read(
    api: Api, alice: Party, restricted_key: str
) -> None:
    response = api.using(restricted_key).post(
        "/v1/transfers", raw=b"{not json", content_type="application/json"
    )
    assert problem(response) == (403, "insufficient_scope", None)


def test_a_missing_scope_reveals_nothing_about_the_object(
    api: Api, alice: Party, restricted_key: str, transfer: str
) -> None:
    reader = api.using(restricted_key)
    real = reader.post(f"/v1/transfers/{transfer}/void")
    made_up = reader.post("/v1/transfers/tr_00000000000000000000000000/void")
    assert problem(real) == problem(made_up) == (403, "insufficient_scope", None)


def test_a_viewers_restricted_key_reads_transfers_and_nothing_else(
    api: Api, alice: Party, bob_key: str, transfer: str
) -> None:
    bob = api.using(bob_key)
    assert bob.get(f"/v1/transfers/{transfer}").status_code == 200
    assert problem(bob.get("/v1/accounts")) == (403, "insufficient_scope", None)
    assert problem(bob.post(f"/v1/transfers/{transfer}/void")) == (403, "insufficient_scope", None)
