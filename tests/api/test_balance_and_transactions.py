"""GET /v1/accounts/{id}/balance and /transactions: what an account holds, and the
ledger entries that made it so, newest first."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger import services as ledger
from ledger.models import Entry, Settlement, Transfer
from payments import services as payments
from tests.api.support import SANDBOX_BALANCE, Api, Party, problem, rfc3339

pytestmark = pytest.mark.django_db


def pay(api: Api, party: Party, amount: int, settlement: str = "manual") -> str:
    response = api.post(
        "/v1/transfers",
        {
            "source_account": party.usd.id,
            "destination_account": party.payee.id,
            "amount": amount,
            "currency": "USD",
            "settlement": settlement,
        },
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_a_funded_sandbox_account_has_its_opening_balance(api: Api, alice: Party) -> None:
    response = api.get(f"/v1/accounts/{alice.usd.id}/balance")
    assert response.status_code == 200
    assert response.json() == {
        "object": "balance",
        "account": alice.usd.id,
        "currency": "USD",
        "available": 1_000_000,
        "pending": 0,
        "posted": 1_000_000,
    }


def test_a_pending_transfer_is_pending_on_the_source_and_invisible_on_the_destination(
    api: Api, alice: Party
) -> None:
    pay(api, alice, 2_550)
    source = api.get(f"/v1/accounts/{alice.usd.id}/balance").json()
    destination = api.get(f"/v1/accounts/{alice.payee.id}/balance").json()
    assert (source["posted"], source["pending"], source["available"]) == (
        1_000_000,
        2_550,
        997_450,
    )
    assert (destination["posted"], destination["pending"], destination["available"]) == (0, 0, 0)


def test_settling_posts_the_amount_on_both_sides(api: Api, alice: Party) -> None:
    api.post(f"/v1/transfers/{pay(api, alice, 2_550)}/settle")
    source = api.get(f"/v1/accounts/{alice.usd.id}/balance").json()
    destination = api.get(f"/v1/accounts/{alice.payee.id}/balance").json()
    assert (source["posted"], source["pending"], source["available"]) == (997_450, 0, 997_450)
    assert (destination["posted"], destination["pending"], destination["available"]) == (
        2_550,
        0,
        2_550,
    )


def test_the_account_object_embeds_the_same_balance(api: Api, alice: Party) -> None:
    pay(api, alice, 100)
    account = api.get(f"/v1/accounts/{alice.usd.id}").json()
    assert account["balance"] == api.get(f"/v1/accounts/{alice.usd.id}/balance").json()


def test_a_balance_is_read_in_the_same_queries_after_one_entry_or_forty(
    api: Api, alice: Party
) -> None:
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/v1/accounts/{alice.usd.id}/balance").status_code == 200
        return [q["sql"] for q in captured.captured_queries if "ledger_entry" in q["sql"]]

    assert queries() == [], "a balance is a stored row, never a sum of entries"
    for _ in range(39):
        ledger.transfer_post(
            holder=alice.holder,
            livemode=False,
            source_id=alice.usd.id,
            destination_id=alice.payee.id,
            amount=1,
            currency="USD",
        )
    assert queries() == []


def test_a_funded_account_has_one_entry_the_funding(api: Api, alice: Party) -> None:
    response = api.get(f"/v1/accounts/{alice.usd.id}/transactions")
    assert response.status_code == 200
    [entry] = Entry.objects.filter(account_id=alice.usd.id)
    assert response.json() == {
        "object": "list",
        "data": [
            {
                "id": entry.id,
                "object": "transaction",
                "account": alice.usd.id,
                "transfer": entry.transfer_id,
                "amount": SANDBOX_BALANCE,
                "currency": "USD",
                "balance_after": SANDBOX_BALANCE,
                "sequence": 1,
                "created_at": rfc3339(entry.created_at),
            }
        ],
        "has_more": False,
        "next_cursor": None,
    }
    assert entry.id.startswith("txn_")


def test_a_pending_transfer_writes_no_entry(api: Api, alice: Party) -> None:
    pay(api, alice, 700)
    assert len(api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]) == 1
    assert api.get(f"/v1/accounts/{alice.payee.id}/transactions").json()["data"] == []


def test_entries_are_signed_and_newest_first_with_the_balance_after_each(
    api: Api, alice: Party
) -> None:
    first = pay(api, alice, 2_550)
    api.post(f"/v1/transfers/{first}/settle")
    second = pay(api, alice, 1_000)
    api.post(f"/v1/transfers/{second}/settle", {"amount": 400})
    history = api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]
    assert [(e["amount"], e["balance_after"], e["sequence"]) for e in history] == [
        (-400, 997_050, 3),
        (-2_550, 997_450, 2),
        (1_000_000, 1_000_000, 1),
    ]
    assert [e["transfer"] for e in history[:2]] == [second, first]
    payee = api.get(f"/v1/accounts/{alice.payee.id}/transactions").json()["data"]
    assert [(e["amount"], e["balance_after"], e["sequence"]) for e in payee] == [
        (400, 2_950, 2),
        (2_550, 2_550, 1),
    ]


def test_a_reversal_adds_entries_and_edits_none(api: Api, alice: Party) -> None:
    transfer = pay(api, alice, 1_999)
    api.post(f"/v1/transfers/{transfer}/settle")
    before = api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]
    api.post(f"/v1/transfers/{transfer}/reverse")
    after = api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]
    assert after[1:] == before, "the earlier entries are exactly as they were"
    reversal = Transfer.objects.get(reversal_of_id=transfer)
    assert (after[0]["amount"], after[0]["balance_after"], after[0]["transfer"]) == (
        1_999,
        1_000_000,
        reversal.id,
    )


def test_an_auto_transfer_shows_up_once_the_worker_settled_it(api: Api, alice: Party) -> None:
    transfer = pay(api, alice, 300, settlement=Settlement.AUTO)
    assert payments.transfers_settle_due().settled == 1
    [latest, _] = api.get(f"/v1/accounts/{alice.usd.id}/transactions").json()["data"]
    assert (latest["transfer"], latest["amount"], latest["balance_after"]) == (
        transfer,
        -300,
        999_700,
    )


@pytest.mark.parametrize("suffix", ["balance", "transactions"])
def test_an_account_that_does_not_exist_has_no_balance_or_history(api: Api, suffix: str) -> None:
    response = api.get(f"/v1/accounts/acct_00000000000000000000000000/{suffix}")
    assert problem(response) == (404, "not_found", None)
