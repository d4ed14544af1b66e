"""GET/POST /v1/accounts and GET /v1/accounts/{id}: the caller's accounts, and only those."""

from __future__ import annotations

import pytest

from ledger.models import Account
from tests.api.support import SANDBOX_BALANCE, Api, Books, Party, problem, rfc3339

pytestmark = pytest.mark.django_db


def test_a_funded_sandbox_account_reads_back_with_its_balance(api: Api, alice: Party) -> None:
    response = api.get(f"/v1/accounts/{alice.usd.id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": alice.usd.id,
        "object": "account",
        "name": "Sandbox USD",
        "currency": "USD",
        "livemode": False,
        "status": "open",
        "metadata": {},
        "balance": {
            "object": "balance",
            "account": alice.usd.id,
            "currency": "USD",
            "available": SANDBOX_BALANCE,
            "pending": 0,
            "posted": SANDBOX_BALANCE,
        },
        "created_at": rfc3339(alice.usd.created_at),
    }


def test_ids_are_opaque_prefixed_strings(api: Api, alice: Party) -> None:
    account = api.get(f"/v1/accounts/{alice.usd.id}").json()
    assert account["id"].startswith("acct_")
    assert len(account["id"]) == len("acct_") + 26


def test_the_list_holds_the_callers_three_accounts_newest_first(api: Api, alice: Party) -> None:
    response = api.get("/v1/accounts")
    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body["data"]] == [alice.payee.id, alice.eur.id, alice.usd.id]
    assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)


def test_the_list_shows_no_other_organizations_accounts(
    api: Api, alice: Party, charlie: Party
) -> None:
    ids = {a["id"] for a in api.get("/v1/accounts").json()["data"]}
    assert ids == {alice.usd.id, alice.eur.id, alice.payee.id}


def test_opening_an_account_answers_201_with_an_empty_balance(api: Api, alice: Party) -> None:
    response = api.post(
        "/v1/accounts", {"currency": "JPY", "name": "Yen float", "metadata": {"team": "ops"}}
    )
    assert response.status_code == 201
    body = response.json()
    account = Account.objects.get(id=body["id"])
    assert body == {
        "id": account.id,
        "object": "account",
        "name": "Yen float",
        "currency": "JPY",
        "livemode": False,
        "status": "open",
        "metadata": {"team": "ops"},
        "balance": {
            "object": "balance",
            "account": account.id,
            "currency": "JPY",
            "available": 0,
            "pending": 0,
            "posted": 0,
        },
        "created_at": rfc3339(account.created_at),
    }


def test_an_account_opened_with_a_test_key_belongs_to_the_callers_organization_in_test_mode(
    api: Api, alice: Party
) -> None:
    body = api.post("/v1/accounts", {"currency": "EUR"}).json()
    account = Account.objects.get(id=body["id"])
    assert (account.holder, account.livemode, account.kind) == (alice.holder, False, "customer")


def test_name_and_metadata_are_optional(api: Api) -> None:
    response = api.post("/v1/accounts", {"currency": "USD"})
    assert response.status_code == 201
    assert (response.json()["name"], response.json()["metadata"]) == ("", {})


def test_a_new_account_appears_first_in_the_list(api: Api) -> None:
    opened = api.post("/v1/accounts", {"currency": "KWD"}).json()
    assert api.get("/v1/accounts").json()["data"][0] == opened


def test_opening_an_account_needs_a_currency(api: Api) -> None:
    before = Books.now()
    response = api.post("/v1/accounts", {"name": "No currency"})
    assert problem(response) == (400, "validation_error", "currency")
    assert response.json()["errors"] == [
        {"param": "currency", "code": "required", "detail": "This field is required."}
    ]
    assert Books.now() == before


@pytest.mark.parametrize(
    ("currency", "code"),
    [
        ("XYZ", "invalid_currency"),
        ("usd", "invalid_currency"),
        ("US", "invalid_currency"),
        (840, "invalid_currency"),
        ("", "validation_error"),
        (None, "validation_error"),
    ],
)
def test_opening_an_account_in_a_currency_we_do_not_know_is_refused(
    api: Api, currency: object, code: str
) -> None:
    before = Books.now()
    assert problem(api.post("/v1/accounts", {"currency": currency})) == (400, code, "currency")
    assert Books.now() == before


def test_an_unknown_currency_code_is_named_invalid_currency(api: Api) -> None:
    assert problem(api.post("/v1/accounts", {"currency": "XYZ"})) == (
        400,
        "invalid_currency",
        "currency",
    )


@pytest.mark.parametrize(
    "metadata",
    [
        {"n": 1},
        {"nested": {"a": "b"}},
        ["a", "b"],
        "a string",
        {"": "empty key"},
        {"k" * 41: "key too long"},
        {"v": "x" * 501},
        {f"k{i}": "v" for i in range(51)},
    ],
    ids=["number", "nested", "list", "string", "empty-key", "long-key", "long-value", "51-keys"],
)
def test_metadata_is_up_to_fifty_short_string_pairs(api: Api, metadata: object) -> None:
    before = Books.now()
    assert problem(api.post("/v1/accounts", {"currency": "USD", "metadata": metadata}))[:2] == (
        400,
        "validation_error",
    )
    assert Books.now() == before


def test_fifty_metadata_pairs_of_the_longest_size_are_accepted(api: Api) -> None:
    metadata = {f"{i:040d}": "v" * 500 for i in range(50)}
    response = api.post("/v1/accounts", {"currency": "USD", "metadata": metadata})
    assert response.status_code == 201
    assert response.json()["metadata"] == metadata


def test_a_name_longer_than_200_characters_is_refused(api: Api) -> None:
    response = api.post("/v1/accounts", {"currency": "USD", "name": "n" * 201})
    assert problem(response) == (400, "validation_error", "name")


def test_a_name_must_be_a_string(api: Api) -> None:
    response = api.post("/v1/accounts", {"currency": "USD", "name": 42})
    assert problem(response) == (400, "validation_error", "name")


@pytest.mark.parametrize("account_id", ["acct_00000000000000000000000000", "nope", "1", "%00"])
def test_an_account_that_does_not_exist_is_not_found(api: Api, account_id: str) -> None:
    response = api.get(f"/v1/accounts/{account_id}")
    assert problem(response) == (404, "not_found", None)
    assert response.json()["detail"] == "No such account."


def test_a_system_account_of_the_platform_is_not_found(api: Api, alice: Party) -> None:
    funding = Account.objects.get(holder="platform", currency_id="USD", livemode=False)
    assert problem(api.get(f"/v1/accounts/{funding.id}")) == (404, "not_found", None)
