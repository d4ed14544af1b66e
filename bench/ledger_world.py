"""The books the ledger benchmarks run on: funded customer accounts with ids that
pgbench can name too, and accounts with long histories."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ledger import services
from ledger.models import Account
from ledger.verify import ledger_verify

HOLDER = "bench"
CURRENCY = "USD"
# Enough that no benchmark ever runs a customer dry.
FUNDS = 10**12
ID_PREFIX = "acct_bench"


def customer_id(number: int) -> str:
    """`acct_bench000…0042`: an integer-suffixed id that pgbench can build as well."""
    return f"{ID_PREFIX}{number:021d}"


def open_customers(count: int) -> None:
    """Customer accounts 1..count, each funded from a system account."""
    Account.objects.bulk_create(
        Account(id=customer_id(n), holder=HOLDER, livemode=False, currency_id=CURRENCY)
        for n in range(1, count + 1)
    )
    funding = open_system("bench funding")
    ids = [customer_id(n) for n in range(1, count + 1)]
    for start in range(0, count, services.MAX_BATCH):
        services.transfer_batch_create(
            holder=funding.holder,
            livemode=False,
            specs=[
                services.TransferSpec(funding.id, account_id, FUNDS, CURRENCY)
                for account_id in ids[start : start + services.MAX_BATCH]
            ],
        )
    settle_all()


def create(source_id: str, destination_id: str, amount: int) -> None:
    """A transfer as every ledger benchmark makes it: test mode, USD, `auto` settlement."""
    services.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=source_id,
        destination_id=destination_id,
        amount=amount,
        currency=CURRENCY,
    )


def open_customer(name: str) -> Account:
    return services.account_open(holder=HOLDER, livemode=False, currency=CURRENCY, name=name)


def open_system(purpose: str) -> Account:
    return services.system_account(purpose=purpose, currency=CURRENCY, livemode=False)


def settle_all() -> tuple[int, float]:
    """Run settlement batches until nothing is pending: (transfers settled, seconds)."""
    settled, started = 0, time.perf_counter()
    while True:
        report = services.transfer_settle_due(limit=500)
        if not report.settled and not report.failed:
            return settled, time.perf_counter() - started
        settled += len(report.settled)


# Long histories, written set-based ---------------------------------------------------

_TRANSFERS = """
INSERT INTO ledger_transfer (
    id, holder, livemode, currency_id, source_id, destination_id, amount, settled_amount,
    status, settlement, description, metadata, client_reference, hold_expires_at,
    fail_at_settlement, failure_reason, reversal_of_id, version, created_at, updated_at)
SELECT 'tr_' || %(tag)s || lpad(i::text, %(width)s, '0'), %(holder)s, false, %(currency)s,
       %(source)s, %(destination)s, 1, 1, 'settled', 'manual', '', '{}', NULL, NULL, '', '',
       NULL, 2, %(start)s + i * interval '1 millisecond', %(start)s + i * interval '1 millisecond'
  FROM generate_series(1, %(entries)s) AS i
"""

# Transfer i credits the account 1 and debits the counterparty 1: both sides' entry i.
_ENTRIES = """
INSERT INTO ledger_entry (id, account_id, transfer_id, amount, balance_after, seq, created_at)
SELECT 'txn_' || %(tag)s || side.code || lpad(i::text, %(width)s - 1, '0'), side.account_id,
       'tr_' || %(tag)s || lpad(i::text, %(width)s, '0'), side.sign, side.sign * i, i,
       %(start)s + i * interval '1 millisecond'
  FROM generate_series(1, %(entries)s) AS i
 CROSS JOIN (VALUES ('c', %(destination)s, 1), ('d', %(source)s, -1))
       AS side (code, account_id, sign)
"""

_BALANCES = "UPDATE ledger_account SET posted = %s, entry_count = %s WHERE id = %s"


def open_with_history(entries: int, tag: str) -> str:
    """A customer account holding `entries` entries of 1 cent each, all from one
    counterparty system account, written with INSERT ... SELECT generate_series.

    The rows are what the services would have written (seq 1..n, balance_after the
    running sum, posted and entry_count on both accounts), so the books verify. The
    triggers (including the per-row deferred check that a transfer sums to zero) are
    skipped for this one transaction with session_replication_role = replica: checking
    2n rows one by one would take longer than every benchmark together.
    """
    account = open_customer(f"history {tag}")
    counterparty = open_system(f"bench counterparty {tag}")
    params: dict[str, Any] = {
        "tag": tag,
        "width": 26 - len(tag),
        "holder": counterparty.holder,
        "currency": CURRENCY,
        "source": counterparty.id,
        "destination": account.id,
        "entries": entries,
        "start": timezone.now() - dt.timedelta(milliseconds=entries + 1),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(_TRANSFERS, params)
        cursor.execute(_ENTRIES, params)
        cursor.execute(_BALANCES, [entries, entries, account.id])
        cursor.execute(_BALANCES, [-entries, entries, counterparty.id])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_account, ledger_transfer, ledger_entry")
    return account.id


def verify() -> str | None:
    """ledger_verify over the whole database: the first discrepancy, or None."""
    found = ledger_verify()
    return f"{found.check}: {found.detail}" if found else None
