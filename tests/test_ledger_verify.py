"""`manage.py ledger_verify` finds every kind of tampering, and names the first."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger import services as ledger
from ledger.models import Settlement
from tests.factories import HOLDER, open_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("constraints_checked_now")]


@pytest.fixture
def books() -> dict[str, str]:
    alice = open_account("USD", balance=5_000)
    shop = open_account("USD", holder="shop")
    settled = ledger.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=1_200,
        currency="USD",
        settlement=Settlement.MANUAL,
    ).transfer
    ledger.transfer_settle(transfer_id=settled.id)
    ledger.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=300,
        currency="USD",
    )
    return {"alice": alice.id, "shop": shop.id, "settled": settled.id}


def verify() -> str:
    out = StringIO()
    call_command("ledger_verify", stdout=out)
    return out.getvalue()


def tamper(sql: str, params: list[str]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The database refuses to touch entries; an attacker with superuser rights
            # could still switch the guard off, and ledger_verify must still notice.
            cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_immutable")
        cursor.execute(sql, params)


def test_right_books_pass(books: dict[str, str]) -> None:
    assert "the books are right" in verify()


def test_a_balance_changed_by_hand_is_named(books: dict[str, str]) -> None:
    tamper("UPDATE ledger_account SET posted = posted + 1 WHERE id = %s", [books["shop"]])
    with pytest.raises(CommandError, match=f"balance: account {books['shop']}"):
        verify()


def test_an_altered_entry_is_named(books: dict[str, str]) -> None:
    tamper(
        "UPDATE ledger_entry SET balance_after = balance_after + 5 "
        "WHERE account_id = %s AND seq = 1",
        [books["alice"]],
    )
    with pytest.raises(CommandError, match=f"entries: account {books['alice']}, entry seq 1"):
        verify()


def test_a_deleted_entry_is_noticed(books: dict[str, str]) -> None:
    tamper("DELETE FROM ledger_entry WHERE account_id = %s AND seq = 1", [books["shop"]])
    with pytest.raises(CommandError, match=r"entries|transfer"):
        verify()


def test_a_hold_that_matches_no_pending_transfer_is_named(books: dict[str, str]) -> None:
    tamper("UPDATE ledger_account SET held = 0 WHERE id = %s", [books["alice"]])
    with pytest.raises(CommandError, match=f"hold: account {books['alice']}"):
        verify()


def test_money_created_from_nothing_is_named(books: dict[str, str]) -> None:
    # Consistent on the account's own side (entry and balance agree), yet the transfer
    # no longer balances and money of the currency no longer sums to zero.
    tamper(
        "UPDATE ledger_entry SET amount = amount + 100, balance_after = balance_after + 100 "
        "WHERE account_id = %s AND seq = 1",
        [books["shop"]],
    )
    tamper("UPDATE ledger_account SET posted = posted + 100 WHERE id = %s", [books["shop"]])
    with pytest.raises(CommandError, match=f"transfer: transfer {books['settled']}"):
        verify()
