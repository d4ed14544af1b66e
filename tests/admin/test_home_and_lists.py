"""What merchant staff read: the home page with their balances and the last 30 days of
volume, and lists with amounts in the currency's own units, status badges, filters
(status, mode, currency, dates) and search by id, description and metadata, on SQLite
and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.models import Transfer
from oauth.admin_site import merchant_books
from oauth.admin_support import money
from tests.admin.conftest import Cast, shows, text, verified_client

pytestmark = pytest.mark.django_db

TRANSFERS = "/admin/ledger/transfer/"


# Amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1050, "USD", "10.50 USD"),
        (-1050, "USD", "-10.50 USD"),
        (123456789, "USD", "1,234,567.89 USD"),
        (1050, "JPY", "1,050 JPY"),
        (1050, "KWD", "1.050 KWD"),
        (0, "EUR", "0.00 EUR"),
        (None, "EUR", "—"),
    ],
)
def test_amounts_are_written_in_the_currencys_own_units(
    db: None, amount: int | None, currency: str, shown: str
) -> None:
    assert money(amount, currency) == shown


def test_the_transfers_list_shows_formatted_amounts_and_status_badges(cast: Cast) -> None:
    page = text(verified_client(cast.alice).get(TRANSFERS))
    assert "25.50 USD" in page and "7.00 USD" in page
    assert '<span class="op-badge op-ok">Settled</span>' in page
    assert '<span class="op-badge op-wait">Pending</span>' in page


# The home page ----------------------------------------------------------------------------------


def test_the_home_shows_the_balances_of_each_account(cast: Cast) -> None:
    page = text(verified_client(cast.alice).get("/admin/"))
    assert "Alice Ltd" in page
    books = cast.alice_books
    assert shows(page, books.usd.id) and shows(page, books.eur.id) and shows(page, books.payee.id)
    assert "9,974.50 USD" in page  # 10,000.00 less the 25.50 payment
    assert "7.00 USD" in page  # held for the pending transfer
    assert "10,000.00 EUR" in page
    assert "Bob Books" not in page and not shows(page, cast.bob_books.usd.id)


def test_the_home_shows_the_settled_volume_of_the_last_30_days(cast: Cast) -> None:
    old = cast.alice_books.settled
    recent = Transfer.objects.create(
        holder=old.holder,
        livemode=False,
        currency_id="USD",
        source_id=old.source_id,
        destination_id=old.destination_id,
        amount=1_000,
        settled_amount=1_000,
        status="settled",
    )
    Transfer.objects.filter(id=old.id).update(created_at=timezone.now() - dt.timedelta(days=40))
    request = RequestFactory().get("/admin/")
    request.user = cast.alice
    [books] = merchant_books(request)
    [volume] = books.volumes
    assert (volume.currency, volume.livemode, volume.count, volume.total) == (
        "USD",
        False,
        1,
        1_000,
    )
    assert len(volume.bars) == 30
    assert volume.bars[-1].height == 60 and volume.bars[-1].label.endswith("10.00 USD")
    assert recent.id


def test_the_volume_is_one_group_by_query(cast: Cast) -> None:
    request = RequestFactory().get("/admin/")
    request.user = cast.alice
    with CaptureQueriesContext(connection) as queries:
        merchant_books(request)
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(grouped) == 1


def test_the_home_page_draws_the_volume_without_anything_from_elsewhere(cast: Cast) -> None:
    page = text(verified_client(cast.alice).get("/admin/"))
    assert "<svg" in page and "<rect" in page and "25.50 USD" in page
    assert "http://" not in page.split("<body", 1)[1].replace("http://www.w3.org", "")


def test_a_superuser_without_an_organization_gets_the_plain_index(cast: Cast) -> None:
    page = text(verified_client(cast.root).get("/admin/"))
    assert "Balances" not in page
    assert "/admin/ledger/transfer/" in page


# Filters and search ---------------------------------------------------------------------------


def listed(cast: Cast, url: str, **query: str) -> str:
    response = verified_client(cast.alice).get(url, query)
    assert response.status_code == 200
    return text(response)


def test_searching_finds_a_transfer_by_its_metadata(cast: Cast) -> None:
    page = listed(cast, TRANSFERS, q="alice-order-1001")
    assert cast.alice_books.settled.id in page
    assert cast.alice_books.pending.id not in page


def test_searching_finds_a_transfer_by_its_description_or_id(cast: Cast) -> None:
    by_description = listed(cast, TRANSFERS, q="Deposit")
    assert cast.alice_books.pending.id in by_description
    assert cast.alice_books.settled.id not in by_description
    by_id = listed(cast, TRANSFERS, q=cast.alice_books.settled.id)
    assert cast.alice_books.pending.id not in by_id
    assert cast.alice_books.settled.id in by_id


def test_searching_entries_by_their_transfers_metadata(cast: Cast) -> None:
    page = listed(cast, "/admin/ledger/entry/", q="alice-order-1001")
    assert page.count(f">{cast.alice_books.settled.id}<") == 2


def test_searching_events_by_what_they_carry(cast: Cast) -> None:
    page = listed(cast, "/admin/payments/event/", q=cast.alice_books.pending.id)
    assert '<td class="field-type">transfer.created</td>' in page
    assert '<td class="field-type">transfer.settled</td>' not in page


def test_filtering_by_status(cast: Cast) -> None:
    page = listed(cast, TRANSFERS, status__exact="pending")
    assert cast.alice_books.pending.id in page
    assert cast.alice_books.settled.id not in page


def test_filtering_by_mode_and_currency(cast: Cast) -> None:
    assert cast.alice_books.settled.id in listed(cast, TRANSFERS, mode="test")
    assert cast.alice_books.settled.id not in listed(cast, TRANSFERS, mode="live")
    assert cast.alice_books.settled.id not in listed(cast, TRANSFERS, currency="EUR")
    accounts = listed(cast, "/admin/ledger/account/", currency="EUR")
    assert cast.alice_books.eur.id in accounts and cast.alice_books.usd.id not in accounts


def test_filtering_by_a_date_range(cast: Cast) -> None:
    today = timezone.localdate()
    both = listed(cast, TRANSFERS, created_at_from=str(today), created_at_to=str(today))
    assert cast.alice_books.settled.id in both and cast.alice_books.pending.id in both
    tomorrow = str(today + dt.timedelta(days=1))
    assert cast.alice_books.settled.id not in listed(cast, TRANSFERS, created_at_from=tomorrow)
    yesterday = str(today - dt.timedelta(days=1))
    assert cast.alice_books.settled.id not in listed(cast, TRANSFERS, created_at_to=yesterday)


def test_a_malformed_date_is_reported_not_a_server_error(cast: Cast) -> None:
    response = verified_client(cast.alice).get(TRANSFERS, {"created_at_from": "last week"})
    assert response.status_code == 302
    assert "?e=1" in response["Location"]


def test_filtering_entries_by_account(cast: Cast) -> None:
    page = listed(cast, "/admin/ledger/entry/", account=cast.alice_books.payee.id)
    assert page.count(f">{cast.alice_books.payee.id}<") == 1
    assert f">{cast.alice_books.usd.id}<" not in page
