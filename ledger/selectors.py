"""Reads of the books. A balance is one row read, history is an index range scan."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from django.db.models import QuerySet

from ledger import errors
from ledger.models import Account, Currency, Entry


@cache
def currency_exponents() -> dict[str, int]:
    """ISO 4217 code -> number of minor-unit digits. Loaded once per process; the
    table only changes with a migration."""
    return dict(Currency.objects.values_list("code", "exponent"))


@dataclass(frozen=True)
class Balance:
    account_id: str
    currency: str
    posted: int
    held: int
    available: int


def account_get(*, account_id: str, holder: str | None = None) -> Account:
    query = Account.objects.filter(id=account_id)
    if holder is not None:
        query = query.filter(holder=holder)
    account = query.first()
    if account is None:
        raise errors.AccountNotFound("no such account", param="id")
    return account


def account_balance(*, account_id: str, holder: str | None = None) -> Balance:
    """O(1): the stored balance, not a sum of entries."""
    account = account_get(account_id=account_id, holder=holder)
    return Balance(
        account_id=account.id,
        currency=account.currency_id,
        posted=account.posted,
        held=account.held,
        available=account.available,
    )


def accounts_of(*, holder: str, livemode: bool) -> QuerySet[Account]:
    return Account.objects.filter(holder=holder, livemode=livemode)


def account_entries(
    *, account_id: str, before_seq: int | None = None, limit: int = 20
) -> list[Entry]:
    """The account's entries, newest first, `limit` of them older than `before_seq`.
    Reads the (account, seq) index backwards: the same cost at any depth."""
    query = Entry.objects.filter(account_id=account_id)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    return list(query.order_by("-seq")[:limit])


def balance_as_of(*, account_id: str, at: dt.datetime) -> int:
    """The posted balance at a moment in the past: the balance after the last entry
    made at or before it."""
    entry = (
        Entry.objects.filter(account_id=account_id, created_at__lte=at)
        .order_by("-created_at", "-seq")
        .only("balance_after")
        .first()
    )
    return entry.balance_after if entry else 0
