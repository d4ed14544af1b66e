"""Lists: `?limit=` 1-100 (default 20) and an opaque `?cursor=`. A walk sees every item
exactly once, newest first, and rows inserted meanwhile never shift a later page."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ledger import services as ledger
from ledger.models import Settlement
from tests.api.support import Api, Party, problem

pytestmark = pytest.mark.django_db


def transfers(party: Party, count: int) -> list[str]:
    """`count` pending transfers of one minor unit, oldest first."""
    return [
        ledger.transfer_create(
            holder=party.holder,
            livemode=False,
            source_id=party.usd.id,
            destination_id=party.payee.id,
            amount=1,
            currency="USD",
            settlement=Settlement.MANUAL,
        ).transfer.id
        for _ in range(count)
    ]


def postings(party: Party, count: int) -> None:
    for amount in range(1, count + 1):
        ledger.transfer_post(
            holder=party.holder,
            livemode=False,
            source_id=party.usd.id,
            destination_id=party.payee.id,
            amount=amount,
            currency="USD",
        )


def walk(api: Api, path: str, limit: int) -> list[list[Any]]:
    """Every page of `path`, following next_cursor until has_more is false."""
    pages: list[list[Any]] = []
    query: dict[str, Any] = {"limit": limit}
    while True:
        body = api.get(path, query).json()
        pages.append(body["data"])
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return pages
        assert len(pages) < 100, "the walk does not end"
        query = {"limit": limit, "cursor": body["next_cursor"]}


def test_a_list_holds_twenty_items_by_default(api: Api, alice: Party) -> None:
    made = transfers(alice, 25)
    body = api.get("/v1/transfers").json()
    assert [t["id"] for t in body["data"]] == made[::-1][:20]
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)


@pytest.mark.parametrize("limit", [1, 7, 24, 25, 100])
def test_a_list_holds_up_to_limit_items(api: Api, alice: Party, limit: int) -> None:
    transfers(alice, 25)
    body = api.get("/v1/transfers", {"limit": limit}).json()
    assert len(body["data"]) == min(limit, 25)
    assert body["has_more"] is (limit < 25)


def test_the_last_page_says_there_is_no_more(api: Api, alice: Party) -> None:
    transfers(alice, 3)
    body = api.get("/v1/transfers", {"limit": 3}).json()
    assert (len(body["data"]), body["has_more"], body["next_cursor"]) == (3, False, None)


def test_an_empty_list_is_a_list(api: Api, charlie: Party) -> None:
    assert api.get("/v1/transfers").json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "next_cursor": None,
    }


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "", " 5", "1e1", "²"])
def test_a_limit_outside_1_to_100_is_400(api: Api, limit: str) -> None:
    response = api.get("/v1/transfers", {"limit": limit})
    assert problem(response) == (400, "validation_error", "limit")


@pytest.mark.parametrize("limit", [7, 10, 25])
def test_walking_the_cursor_sees_every_transfer_once_newest_first(
    api: Api, alice: Party, limit: int
) -> None:
    made = transfers(alice, 25)
    pages = walk(api, "/v1/transfers", limit)
    assert [len(page) for page in pages] == [
        min(limit, 25 - start) for start in range(0, 25, limit)
    ]
    assert [t["id"] for page in pages for t in page] == made[::-1]


def test_walking_an_accounts_history_sees_every_entry_once_newest_first(
    api: Api, alice: Party
) -> None:
    postings(alice, 30)
    pages = walk(api, f"/v1/accounts/{alice.payee.id}/transactions", 8)
    entries = [e for page in pages for e in page]
    assert [e["sequence"] for e in entries] == list(range(30, 0, -1))
    assert [e["amount"] for e in entries] == list(range(30, 0, -1))


def test_walking_the_accounts_sees_each_once_newest_first(api: Api, alice: Party) -> None:
    opened = [api.post("/v1/accounts", {"currency": "USD"}).json()["id"] for _ in range(5)]
    pages = walk(api, "/v1/accounts", 3)
    assert [a["id"] for page in pages for a in page] == [
        *opened[::-1],
        alice.payee.id,
        alice.eur.id,
        alice.usd.id,
    ]


def test_transfers_made_while_paging_change_no_page_after_the_first(api: Api, alice: Party) -> None:
    transfers(alice, 20)
    before = walk(api, "/v1/transfers", 5)
    first = api.get("/v1/transfers", {"limit": 5}).json()
    transfers(alice, 3)
    pages = [first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        body = api.get("/v1/transfers", {"limit": 5, "cursor": cursor}).json()
        pages.append(body["data"])
        cursor = body["next_cursor"]
    assert pages == before


def test_entries_posted_while_paging_change_no_page_after_the_first(api: Api, alice: Party) -> None:
    postings(alice, 12)
    path = f"/v1/accounts/{alice.payee.id}/transactions"
    before = walk(api, path, 5)
    first = api.get(path, {"limit": 5}).json()
    postings(alice, 4)
    second = api.get(path, {"limit": 5, "cursor": first["next_cursor"]}).json()
    assert second["data"] == before[1]


def test_a_new_transfer_shows_on_the_first_page(api: Api, alice: Party) -> None:
    transfers(alice, 5)
    [newest] = transfers(alice, 1)
    assert api.get("/v1/transfers", {"limit": 1}).json()["data"][0]["id"] == newest


@pytest.mark.parametrize(
    "cursor", ["not a cursor", "!!!", "eyJ", "MTIz", "bnVsbA", "dHJ1ZQ", "W10", "e30", "%00"]
)
def test_a_bad_cursor_is_400(api: Api, alice: Party, cursor: str) -> None:
    response = api.get("/v1/transfers", {"cursor": cursor})
    assert problem(response) == (400, "validation_error", "cursor")


def test_a_transfers_cursor_is_no_cursor_for_an_accounts_history(api: Api, alice: Party) -> None:
    transfers(alice, 3)
    cursor = api.get("/v1/transfers", {"limit": 1}).json()["next_cursor"]
    response = api.get(f"/v1/accounts/{alice.usd.id}/transactions", {"cursor": cursor})
    assert problem(response) == (400, "validation_error", "cursor")


def test_a_historys_cursor_is_no_cursor_for_the_transfers(api: Api, alice: Party) -> None:
    postings(alice, 3)
    path = f"/v1/accounts/{alice.payee.id}/transactions"
    cursor = api.get(path, {"limit": 1}).json()["next_cursor"]
    response = api.get("/v1/transfers", {"cursor": cursor})
    assert problem(response) == (400, "validation_error", "cursor")


def test_charlies_cursor_shows_him_nothing_of_alices(
    api: Api, alice: Party, charlie: Party
) -> None:
    transfers(alice, 3)
    cursor = api.get("/v1/transfers", {"limit": 1}).json()["next_cursor"]
    body = api.using(charlie.secret).get("/v1/transfers", {"cursor": cursor}).json()
    assert body["data"] == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/v1/accounts/{usd}/transactions", 10**40),
        ("/v1/accounts/{usd}/transactions", -1),
        ("/v1/accounts/{usd}/transactions", 1.5),
        ("/v1/transfers", "tr_\u0000"),
        ("/v1/accounts", "acct_\u0000"),
        ("/v1/transfers", "z" * 10_000),
    ],
    ids=["huge-seq", "negative-seq", "float-seq", "nul-transfer", "nul-account", "long-id"],
)
def test_a_forged_cursor_is_never_a_server_error(
    api: Api, alice: Party, path: str, value: object
) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    response = api.get(path.format(usd=alice.usd.id), {"cursor": forged})
    assert response.status_code < 500, response.content
