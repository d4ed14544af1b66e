"""Recompute the books from their entries and compare with what is stored.

Each check is one set-based query, so the whole run is a few sequential scans: cheap
enough to run nightly. A check returns the first discrepancy it finds, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Discrepancy:
    check: str
    detail: str


def _first(sql: str) -> tuple[object, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return tuple(row) if row else None


def check_balances_match_entries() -> Discrepancy | None:
    row = _first(
        """
        SELECT a.id, a.posted, COALESCE(SUM(e.amount), 0), a.entry_count, COUNT(e.id)
          FROM ledger_account a LEFT JOIN ledger_entry e ON e.account_id = a.id
         GROUP BY a.id, a.posted, a.entry_count
        HAVING a.posted <> COALESCE(SUM(e.amount), 0) OR a.entry_count <> COUNT(e.id)
         ORDER BY a.id LIMIT 1
        """
    )
    if row:
        account, posted, total, count, entries = row
        return Discrepancy(
            "balance",
            f"account {account}: stored posted {posted} but its {entries} entries sum to "
            f"{total} (entry_count {count})",
        )
    return None


def check_holds_match_pending_transfers() -> Discrepancy | None:
    row = _first(
        """
        SELECT a.id, a.held, COALESCE(SUM(t.amount), 0)
          FROM ledger_account a
          LEFT JOIN ledger_transfer t ON t.source_id = a.id AND t.status = 'pending'
         GROUP BY a.id, a.held
        HAVING a.held <> COALESCE(SUM(t.amount), 0)
         ORDER BY a.id LIMIT 1
        """
    )
    if row:
        account, held, pending = row
        return Discrepancy(
            "hold", f"account {account}: stored hold {held} but pending transfers total {pending}"
        )
    return None


def check_money_is_conserved() -> Discrepancy | None:
    row = _first(
        """
        SELECT currency_id, livemode, SUM(posted) FROM ledger_account
         GROUP BY currency_id, livemode HAVING SUM(posted) <> 0
         ORDER BY currency_id, livemode LIMIT 1
        """
    )
    if row:
        currency, livemode, total = row
        mode = "live" if livemode else "test"
        return Discrepancy(
            "conservation", f"{currency} {mode} mode: balances sum to {total}, not 0"
        )
    return None


def check_limits_respected() -> Discrepancy | None:
    row = _first(
        """
        SELECT id, posted, held, overdraft_limit FROM ledger_account
         WHERE kind <> 'system' AND posted - held + overdraft_limit < 0
         ORDER BY id LIMIT 1
        """
    )
    if row:
        account, posted, held, limit = row
        return Discrepancy(
            "limit", f"account {account}: posted {posted}, held {held}, beyond its limit {limit}"
        )
    return None


def check_transfers_balance() -> Discrepancy | None:
    row = _first(
        """
        SELECT t.id, t.status, t.settled_amount, COALESCE(SUM(e.amount), 0),
               COALESCE(SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END), 0),
               COUNT(e.id)
          FROM ledger_transfer t LEFT JOIN ledger_entry e ON e.transfer_id = t.id
         GROUP BY t.id, t.status, t.settled_amount
        HAVING COALESCE(SUM(e.amount), 0) <> 0
            OR (t.status IN ('settled', 'reversed')
                AND (COUNT(e.id) <> 2
                     OR COALESCE(SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END), 0)
                        <> t.settled_amount))
            OR (t.status NOT IN ('settled', 'reversed') AND COUNT(e.id) <> 0)
         ORDER BY t.id LIMIT 1
        """
    )
    if row:
        transfer, status, settled, total, credited, count = row
        return Discrepancy(
            "transfer",
            f"transfer {transfer} ({status}, settled {settled}): {count} entries summing to "
            f"{total}, crediting {credited}",
        )
    return None


def check_entries_unaltered() -> Discrepancy | None:
    """Each entry's balance_after must be the running sum of its account's entries in
    sequence order, and sequences must run 1, 2, 3... without gaps: an entry changed,
    removed or inserted afterwards breaks one of the two."""
    row = _first(
        """
        SELECT account_id, seq, balance_after, running, position FROM (
            SELECT account_id, seq, balance_after,
                   SUM(amount) OVER (PARTITION BY account_id ORDER BY seq
                                     ROWS UNBOUNDED PRECEDING) AS running,
                   ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY seq) AS position
              FROM ledger_entry
        ) chain
         WHERE balance_after <> running OR seq <> position
         ORDER BY account_id, seq LIMIT 1
        """
    )
    if row:
        account, seq, balance_after, running, position = row
        return Discrepancy(
            "entries",
            f"account {account}, entry seq {seq} (position {position}): balance_after "
            f"{balance_after} but the entries sum to {running}",
        )
    return None


CHECKS: list[tuple[str, Callable[[], Discrepancy | None]]] = [
    ("entries form an unbroken chain per account", check_entries_unaltered),
    ("each transfer's entries sum to zero", check_transfers_balance),
    ("stored balances equal the sum of entries", check_balances_match_entries),
    ("stored holds equal pending transfers", check_holds_match_pending_transfers),
    ("money is conserved per currency and mode", check_money_is_conserved),
    ("no customer account beyond its limit", check_limits_respected),
]


def ledger_verify() -> Discrepancy | None:
    """Run every check; the first discrepancy found, or None if the books are right."""
    for _, check in CHECKS:
        found = check()
        if found:
            return found
    return None
