"""PostgreSQL guards the books by itself: raw SQL that bypasses ledger.services entirely
still cannot write an unbalanced posting, edit or delete history, push a customer past
its limit, or make a transfer that joins the wrong accounts.

Every refusal is a django.db.IntegrityError whose cause carries the SQLSTATE: 23514
(check_violation) for CHECK constraints and the balance trigger, 23000
(integrity_constraint_violation) for the immutability trigger. Each attempt runs in its
own savepoint, so the test's transaction stays usable after the refusal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from common.ids import new_id
from ledger import services as ledger
from ledger.models import Account, Entry, Transfer
from tests.factories import open_account, system_account

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.usefixtures("constraints_checked_now"),
]

CHECK_VIOLATION = "23514"
INTEGRITY_CONSTRAINT_VIOLATION = "23000"


def sql(statement: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@contextmanager
def rejected(sqlstate: str, match: str) -> Iterator[None]:
    """PostgreSQL refuses what the block writes, with this SQLSTATE and message."""
    with pytest.raises(IntegrityError, match=match) as caught, transaction.atomic():
        yield
    assert getattr(caught.value.__cause__, "sqlstate", None) == sqlstate


def insert_transfer(
    source: Account,
    destination: Account,
    *,
    amount: int = 100,
    currency: str = "USD",
    livemode: bool = False,
) -> str:
    """A pending transfer row, written by hand."""
    transfer_id = new_id("tr")
    sql(
        "INSERT INTO ledger_transfer (id, holder, livemode, currency_id, source_id, "
        "destination_id, amount, settled_amount, status, settlement, description, metadata, "
        "fail_at_settlement, failure_reason, version, created_at, updated_at) "
        "VALUES (%s, 'alice', %s, %s, %s, %s, %s, NULL, 'pending', 'manual', '', '{}', "
        "'', '', 1, now(), now())",
        transfer_id,
        livemode,
        currency,
        source.id,
        destination.id,
        amount,
    )
    return transfer_id


def insert_entries(transfer_id: str, *postings: tuple[Account, int]) -> None:
    """Entries for a transfer, all in one INSERT statement (so one check at its end)."""
    params: list[object] = []
    for seq, (account, amount) in enumerate(postings, start=1_000):
        params += [new_id("txn"), account.id, transfer_id, amount, seq]
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, 0, now())"] * len(postings))
    columns = "id, account_id, transfer_id, amount, seq, balance_after, created_at"
    sql(f"INSERT INTO ledger_entry ({columns}) VALUES {placeholders}", *params)  # noqa: S608


@pytest.fixture
def alice() -> Account:
    return open_account("USD", balance=1_000, overdraft_limit=500)


@pytest.fixture
def shop() -> Account:
    return open_account("USD", holder="shop")


@pytest.fixture
def entry(alice: Account, shop: Account) -> Entry:
    """A real entry, written by the services: alice paid the shop 300."""
    ledger.transfer_post(
        holder="alice",
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=300,
        currency="USD",
    )
    return Entry.objects.get(account=shop)


# Entries: balanced, in one currency, immutable -----------------------------------------


def test_a_balanced_posting_written_by_hand_is_accepted(alice: Account, shop: Account) -> None:
    """The control for the refusals below: the same SQL, balanced, goes through."""
    transfer_id = insert_transfer(alice, shop)
    insert_entries(transfer_id, (alice, -100), (shop, 100))
    assert Entry.objects.filter(transfer_id=transfer_id).count() == 2


@pytest.mark.parametrize(
    ("postings", "total"),
    [([("shop", 100)], 100), ([("alice", -100), ("shop", 99)], -1), ([("alice", -100)], -100)],
    ids=["credit-only", "one-cent-short", "debit-only"],
)
def test_an_unbalanced_posting_is_refused_when_the_transaction_commits(
    alice: Account, shop: Account, postings: list[tuple[str, int]], total: int
) -> None:
    accounts = {"alice": alice, "shop": shop}
    transfer_id = insert_transfer(alice, shop)
    with rejected(CHECK_VIOLATION, rf"entries of transfer {transfer_id} sum to {total}, not"):
        sql("SET CONSTRAINTS ledger_entry_balanced DEFERRED")
        insert_entries(transfer_id, *[(accounts[name], amount) for name, amount in postings])
        assert Entry.objects.filter(transfer_id=transfer_id).count() == len(postings), (
            "accepted for now: the check waits for the commit"
        )
        sql("SET CONSTRAINTS ledger_entry_balanced IMMEDIATE")  # what COMMIT does
    assert not Entry.objects.filter(transfer_id=transfer_id).exists()


def test_a_posting_in_two_currencies_is_refused_even_when_it_sums_to_zero(
    alice: Account, shop: Account
) -> None:
    yen_shop = open_account("JPY", holder="shop")
    transfer_id = insert_transfer(alice, shop, currency="USD")
    with rejected(CHECK_VIOLATION, "are not all in its currency"):
        insert_entries(transfer_id, (alice, -100), (yen_shop, 100))


def test_an_entry_cannot_be_updated(entry: Entry) -> None:
    with rejected(INTEGRITY_CONSTRAINT_VIOLATION, "ledger entries are immutable: UPDATE"):
        sql("UPDATE ledger_entry SET amount = amount + 1 WHERE id = %s", entry.id)
    entry.refresh_from_db()
    assert (entry.amount, entry.balance_after, entry.seq) == (300, 300, 1)


def test_an_entry_cannot_be_deleted(entry: Entry) -> None:
    with rejected(INTEGRITY_CONSTRAINT_VIOLATION, "ledger entries are immutable: DELETE"):
        sql("DELETE FROM ledger_entry WHERE id = %s", entry.id)
    assert Entry.objects.filter(id=entry.id).exists()


# Accounts: within their limit, holds never negative --------------------------------------


@pytest.mark.parametrize(
    "update",
    ["posted = -501", "held = 1501", "overdraft_limit = 0, posted = -1"],
    ids=["posted-below-limit", "held-beyond-limit", "limit-removed-under-debt"],
)
def test_a_customer_balance_cannot_be_set_below_its_limit(alice: Account, update: str) -> None:
    """alice: posted 1_000, limit 500, so posted must stay >= held - 500."""
    with rejected(CHECK_VIOLATION, "account_within_limit"):
        sql(f"UPDATE ledger_account SET {update} WHERE id = %s", alice.id)  # noqa: S608
    alice.refresh_from_db()
    assert (alice.posted, alice.held, alice.overdraft_limit) == (1_000, 0, 500)


def test_a_customer_balance_may_reach_exactly_its_limit(alice: Account) -> None:
    sql("UPDATE ledger_account SET posted = -500 WHERE id = %s", alice.id)
    alice.refresh_from_db()
    assert alice.available == 0


def test_a_system_account_may_go_below_zero() -> None:
    funding = system_account("USD")
    sql("UPDATE ledger_account SET posted = -1000000 WHERE id = %s", funding.id)
    funding.refresh_from_db()
    assert funding.posted == -1_000_000


def test_a_hold_cannot_be_negative(alice: Account) -> None:
    with rejected(CHECK_VIOLATION, "account_held_non_negative"):
        sql("UPDATE ledger_account SET held = -1 WHERE id = %s", alice.id)


# Transfers: positive, between two accounts of its currency and mode ---------------------


@pytest.mark.parametrize("amount", [0, -1])
def test_a_transfer_amount_must_be_positive(alice: Account, shop: Account, amount: int) -> None:
    with rejected(CHECK_VIOLATION, "transfer_amount_positive"):
        insert_transfer(alice, shop, amount=amount)
    assert not Transfer.objects.filter(amount__lte=0).exists()


def test_a_transfer_needs_two_different_accounts(alice: Account) -> None:
    with rejected(CHECK_VIOLATION, "transfer_distinct_accounts"):
        insert_transfer(alice, alice)


@pytest.mark.parametrize(
    ("source", "destination", "currency", "livemode"),
    [
        ("usd", "jpy", "USD", False),
        ("jpy", "usd", "USD", False),
        ("usd", "usd2", "JPY", False),
        ("usd", "live", "USD", False),
        ("live", "usd", "USD", False),
        ("usd", "usd2", "USD", True),
    ],
    ids=[
        "destination-in-yen",
        "source-in-yen",
        "transfer-in-yen",
        "destination-live",
        "source-live",
        "transfer-live",
    ],
)
def test_a_transfer_joins_two_accounts_of_its_own_currency_and_mode(
    source: str, destination: str, currency: str, livemode: bool
) -> None:
    accounts = {
        "usd": open_account("USD"),
        "usd2": open_account("USD", holder="shop"),
        "jpy": open_account("JPY", holder="shop"),
        "live": open_account("USD", holder="shop", livemode=True),
    }
    with rejected(CHECK_VIOLATION, "joins accounts of another currency or mode"):
        insert_transfer(
            accounts[source], accounts[destination], currency=currency, livemode=livemode
        )
    assert not Transfer.objects.exists()


def test_a_transfer_cannot_be_redirected_to_an_account_in_another_currency(
    alice: Account, shop: Account
) -> None:
    yen_shop = open_account("JPY", holder="shop")
    transfer_id = insert_transfer(alice, shop)
    with rejected(CHECK_VIOLATION, "joins accounts of another currency or mode"):
        sql(
            "UPDATE ledger_transfer SET destination_id = %s WHERE id = %s",
            yen_shop.id,
            transfer_id,
        )
    assert Transfer.objects.get(id=transfer_id).destination_id == shop.id
