"""CSV export of an account's entries for a date range: reached from the account's page,
scoped like everything else, audited, and streamed, so that a million entries never
sit in memory at once."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Account, Entry, Settlement
from oauth.models import AuditEntry
from payments import services as payments
from tests.admin.conftest import Cast, text, verified_client

pytestmark = pytest.mark.django_db

EVERYTHING = {"start": "2000-01-01", "end": "2100-12-31"}


def export_url(account: Account) -> str:
    return f"/admin/ledger/account/{account.id}/export/"


def chunks(response: Any) -> Iterator[bytes]:
    """The body of a streamed response, a chunk at a time, as a browser receives it."""
    return iter(response.streaming_content)


def rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(chunks(response)).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_accounts_page_links_to_the_export(cast: Cast) -> None:
    account = cast.alice_books.usd
    page = text(verified_client(cast.alice).get(f"/admin/ledger/account/{account.id}/change/"))
    assert export_url(account).replace("_", "_5F") in page


def test_the_export_page_asks_for_a_date_range(cast: Cast) -> None:
    response = verified_client(cast.avery).get(export_url(cast.alice_books.usd))
    assert response.status_code == 200
    page = text(response)
    assert 'name="start"' in page and 'name="end"' in page and 'type="date"' in page


@pytest.mark.parametrize(
    "dates",
    [
        {"start": "2026-02-01", "end": "2026-01-01"},
        {"start": "yesterday", "end": "2026-01-01"},
        {"start": "", "end": ""},
        {"start": "2026-13-01", "end": "2026-12-01"},
    ],
)
def test_a_bad_range_is_refused_next_to_its_field(cast: Cast, dates: dict[str, str]) -> None:
    response = verified_client(cast.alice).get(export_url(cast.alice_books.usd), dates)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "errorlist" in text(response)
    assert not AuditEntry.objects.filter(action="account.entries_exported").exists()


def test_the_export_lists_the_entries_of_the_range_oldest_first(cast: Cast) -> None:
    books = cast.alice_books
    response = verified_client(cast.avery).get(export_url(books.usd), EVERYTHING)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{books.usd.id}_2000-01-01_2100-12-31.csv"' in response["Content-Disposition"]
    funding, payment = rows(response)
    assert (funding["amount"], funding["amount_decimal"], funding["balance_after"]) == (
        "1000000",
        "10000.00",
        "1000000",
    )
    assert funding["description"] == "Test money"
    assert payment["transfer_id"] == books.settled.id
    assert (payment["amount"], payment["amount_decimal"], payment["currency"]) == (
        "-2550",
        "-25.50",
        "USD",
    )
    assert payment["description"] == "Invoice alice-42"
    assert payment["balance_after"] == "997450"
    assert payment["created_at"].endswith("Z")


def test_the_range_includes_both_days_and_nothing_outside(cast: Cast) -> None:
    client = verified_client(cast.alice)
    account = cast.alice_books.usd
    today = timezone.localdate().isoformat()
    assert len(rows(client.get(export_url(account), {"start": today, "end": today}))) == 2
    past = {"start": "2001-01-01", "end": "2001-01-31"}
    assert rows(client.get(export_url(account), past)) == []


def test_an_export_is_audited(cast: Cast) -> None:
    response = verified_client(cast.avery).get(export_url(cast.alice_books.usd), EVERYTHING)
    rows(response)
    [line] = AuditEntry.objects.filter(action="account.entries_exported")
    assert (line.actor, line.target, line.organization_id) == (
        "avery",
        cast.alice_books.usd.id,
        cast.alice_books.organization.id,
    )
    assert line.detail == {"via": "admin", "from": "2000-01-01", "to": "2100-12-31"}


def test_a_description_cannot_become_a_spreadsheet_formula(cast: Cast) -> None:
    books = cast.alice_books
    transfer = payments.transfer_create(
        organization_id=books.organization.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=books.usd.id,
            destination_id=books.payee.id,
            amount=100,
            currency="USD",
            settlement=Settlement.MANUAL,
            description='=HYPERLINK("http://evil.example","x")',
        ),
    )
    payments.transfer_settle(
        organization_id=books.organization.id, transfer_id=transfer.id, amount=None
    )
    exported = rows(verified_client(cast.alice).get(export_url(books.usd), EVERYTHING))
    assert exported[-1]["description"] == '\'=HYPERLINK("http://evil.example","x")'


# A hundred thousand entries ---------------------------------------------------------------

MANY = 100_000


# The numbers 1..n (the last parameter of each statement) and each one's zero-padded text.
NUMBERS = {
    "postgresql": "generate_series(1, %s) AS n(i)",
    "sqlite": "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
    "SELECT i FROM s) AS n",
}
PADDED = {"postgresql": "lpad(i::text, 25, '0')", "sqlite": "printf('%%025d', i)"}
TRANSFERS = (
    "INSERT INTO ledger_transfer (id, holder, livemode, currency_id, source_id, destination_id, "
    "amount, settled_amount, status, settlement, description, metadata, fail_at_settlement, "
    "failure_reason, version, created_at, updated_at) "
    "SELECT 'tr_z' || PADDED, %s, %s, 'USD', %s, %s, 100, 100, 'settled', 'manual', "
    "'Bulk ' || i, '{}', '', '', 2, %s, %s FROM NUMBERS"
)
# Both sides of every transfer in one statement: the zero-sum check runs at its end.
ENTRIES = (
    "INSERT INTO ledger_entry (id, account_id, transfer_id, amount, balance_after, seq, "
    "created_at) "
    "SELECT 'txn_a' || PADDED, %s, 'tr_z' || PADDED, 100, %s + 100 * i, %s + i, %s FROM NUMBERS "
    "UNION ALL "
    "SELECT 'txn_b' || PADDED, %s, 'tr_z' || PADDED, -100, %s - 100 * i, %s + i, %s FROM NUMBERS"
)
BALANCE = "UPDATE ledger_account SET posted = %s, entry_count = %s WHERE id = %s"


def post_many(account: Account, count: int) -> None:
    """`count` settled transfers of 1.00 USD from the platform's test funding into
    `account`, written set-based in a few statements: balanced entries (each transfer's
    two sum to zero), consecutive sequence numbers and running balances, as the ledger
    writes them."""
    funding = ledger.system_account(purpose=payments.TEST_FUNDING, currency="USD", livemode=False)
    account.refresh_from_db()
    now = timezone.now()

    def sql(template: str) -> str:
        vendor = connection.vendor
        return template.replace("PADDED", PADDED[vendor]).replace("NUMBERS", NUMBERS[vendor])

    with connection.cursor() as cursor:
        cursor.execute(
            sql(TRANSFERS), [funding.holder, False, funding.id, account.id, now, now, count]
        )
        cursor.execute(
            sql(ENTRIES),
            [
                *(account.id, account.posted, account.entry_count, now, count),
                *(funding.id, funding.posted, funding.entry_count, now, count),
            ],
        )
        for target, change in ((account, 100 * count), (funding, -100 * count)):
            cursor.execute(BALANCE, [target.posted + change, target.entry_count + count, target.id])


def test_an_export_of_a_hundred_thousand_entries_streams_in_bounded_memory(cast: Cast) -> None:
    # The zero-sum check is deferred to a commit this test never makes; the next test
    # runs it at once on the same bulk writer, which is where it is proved.
    account = cast.alice_books.payee
    post_many(account, MANY)
    assert Entry.objects.filter(account=account).count() == MANY + 1
    client = verified_client(cast.alice)

    response = client.get(export_url(account), EVERYTHING)  # the rows are read when iterated
    tracemalloc.start()
    try:
        size = lines = 0
        last = b""
        for chunk in chunks(response):
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk or last
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert lines == 1 + MANY + 1  # the header, the first payment, the bulk
    # The first payment's 2,550 and 100,000 times 100, in the account's 100,001st entry.
    assert last.endswith(b",100,1.00,USD,10002550,100001\r\n")
    # What the same rows take when they are all read at once, as a list would: measured
    # on a tenth of them (it grows with the rows), to keep the test quick.
    tracemalloc.start()
    try:
        tenth = list(
            Entry.objects.filter(account=account)
            .order_by("seq")
            .values_list("id", "created_at", "transfer_id", "transfer__description", "amount")[
                : MANY // 10
            ]
        )
        _, tenth_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(tenth) == MANY // 10
    whole = tenth_peak * 10
    assert peak < whole / 5, f"streaming peaked at {peak:,} bytes, reading all at {whole:,}"
    assert peak < size / 2, f"streaming peaked at {peak:,} bytes for a {size:,} byte export"
