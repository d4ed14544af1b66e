"""Sandbox tools move test money only: fund a test account, make a test transfer, make
a pending one fail. Live accounts and other organizations' accounts are never touched,
viewers only look, and every refusal is a plain message next to the field."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client

from ledger import selectors as books
from ledger import services as ledger
from ledger.models import MAX_AMOUNT, Account, Transfer
from oauth.models import Organization
from payments import selectors as payments_read
from payments import services as payments
from payments.models import Event
from tests.factories import make_user, open_account
from tests.portal.conftest import Cast, client_for, csrf_token, post


def sandbox_account(organization: Organization, currency: str = "USD") -> Account:
    return next(
        a
        for a in payments_read.organization_accounts(
            organization_id=organization.id, livemode=False
        )
        if a.currency_id == currency
    )


def second_account(organization: Organization, currency: str = "USD") -> Account:
    return payments.sandbox_open(holder=organization.id, currencies=(currency,))[0]


def live_account(organization: Organization, balance: int = 50_000) -> Account:
    return open_account("USD", holder=organization.id, livemode=True, balance=balance)


def balances(*accounts: Account) -> list[tuple[int, int]]:
    """(posted, held) of each account, read afresh from the books."""
    return [(b.posted, b.held) for b in (books.account_balance(account_id=a.id) for a in accounts)]


def errors_of(response: Any, form: str) -> dict[str, list[str]]:
    return {name: list(messages) for name, messages in response.context[form].errors.items()}


def events_of(transfer: Transfer) -> list[str]:
    return sorted(Event.objects.filter(data__object__id=transfer.id).values_list("type", flat=True))


# The page ---------------------------------------------------------------------------------


def test_alice_sees_her_test_accounts_and_the_tools(cast: Cast) -> None:
    live = live_account(cast.alice_org)
    page = client_for(cast.alice).get("/sandbox/").content.decode()
    assert sandbox_account(cast.alice_org).id in page
    assert sandbox_account(cast.alice_org, "EUR").id in page
    assert "$10,000.00" in page
    assert live.id not in page  # test mode only
    assert 'action="/sandbox/fund"' in page and 'action="/sandbox/transfer"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_bob_the_viewer_sees_the_sandbox_but_no_tools(cast: Cast) -> None:
    response = client_for(cast.bob).get("/sandbox/")
    assert response.status_code == 200
    page = response.content.decode()
    assert sandbox_account(cast.alice_org).id in page
    assert 'action="/sandbox/fund"' not in page


def test_charlie_sees_only_his_own_accounts_and_transfers(cast: Cast) -> None:
    alice_transfer = make_transfer(cast)
    page = client_for(cast.charlie).get("/sandbox/").content.decode()
    assert sandbox_account(cast.charlie_org).id in page
    assert sandbox_account(cast.alice_org).id not in page
    assert alice_transfer.id not in page


def test_anonymous_goes_to_login_and_someone_without_organization_gets_404(cast: Cast) -> None:
    response = Client().get("/sandbox/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    nomad = client_for(make_user("nomad"))
    assert nomad.get("/sandbox/").status_code == 404
    token = csrf_token(nomad, "/docs/")  # a page that has a form for them
    data = {"csrfmiddlewaretoken": token, "account_id": sandbox_account(cast.alice_org).id}
    assert nomad.post("/sandbox/fund", {**data, "amount": "1"}).status_code == 404


# Funding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "typed", "minor"),
    [("USD", "25.00", 2500), ("USD", "0.01", 1), ("USD", "7", 700), ("JPY", "2500", 2500),
     ("KWD", "1.234", 1234), ("KWD", "0.5", 500)],
)  # fmt: skip
def test_funding_raises_the_balance_by_exactly_the_amount_in_minor_units(
    cast: Cast, currency: str, typed: str, minor: int
) -> None:
    account = (
        sandbox_account(cast.alice_org)
        if currency == "USD"
        else second_account(cast.alice_org, currency)
    )
    [(before, _)] = balances(account)
    response = post(
        client_for(cast.alice), "/sandbox/fund", {"account_id": account.id, "amount": typed}
    )
    assert response.status_code == 302 and response["Location"] == "/sandbox/"
    assert balances(account) == [(before + minor, 0)]


def test_a_successful_fund_says_so_on_the_next_page(cast: Cast) -> None:
    account = sandbox_account(cast.alice_org)
    response = post(
        client_for(cast.alice),
        "/sandbox/fund",
        {"account_id": account.id, "amount": "25.00"},
        follow=True,
    )
    assert "Added $25.00 to Sandbox USD." in response.content.decode()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0.001", "USD has at most 2 decimal places."),
        ("10.500", "USD has at most 2 decimal places."),
        ("0", "Enter an amount above zero."),
        ("0.00", "Enter an amount above zero."),
        ("-5", "Enter an amount above zero."),
        ("", "This field is required."),
        ("abc", "Enter a number such as 25.00"),
        ("1e5", "Enter a number such as 25.00"),
        ("1,000.00", "Enter a number such as 25.00"),
        ("NaN", "Enter a number such as 25.00"),
        ("Infinity", "Enter a number such as 25.00"),
        ("\uff11\uff12", "Enter a number such as 25.00"),  # full-width digits
        ("92233720368547758.08", "At most $92,233,720,368,547,758.07 at once."),
        ("9" * 40, "At most"),
        ("9" * 41, "at most 40 characters"),
    ],
)
def test_bad_amounts_are_refused_next_to_the_field_and_nothing_moves(
    cast: Cast, typed: str, message: str
) -> None:
    account = sandbox_account(cast.alice_org)
    before = balances(account)
    response = post(
        client_for(cast.alice), "/sandbox/fund", {"account_id": account.id, "amount": typed}
    )
    assert response.status_code == 200
    assert any(message in error for error in errors_of(response, "fund_form")["amount"])
    assert message in html.unescape(response.content.decode())
    assert balances(account) == before


def test_a_whole_yen_amount_is_required_for_yen(cast: Cast) -> None:
    account = second_account(cast.alice_org, "JPY")
    before = balances(account)
    response = post(
        client_for(cast.alice), "/sandbox/fund", {"account_id": account.id, "amount": "1.5"}
    )
    assert errors_of(response, "fund_form")["amount"] == ["JPY has no decimal places."]
    assert balances(account) == before


def test_funding_beyond_what_a_balance_holds_is_refused_by_the_ledger(cast: Cast) -> None:
    account = sandbox_account(cast.alice_org)
    before = balances(account)
    most = f"{MAX_AMOUNT // 100}.{MAX_AMOUNT % 100:02d}"
    response = post(
        client_for(cast.alice), "/sandbox/fund", {"account_id": account.id, "amount": most}
    )
    assert errors_of(response, "fund_form")["amount"] == [
        "That would take a balance beyond what the ledger can hold."
    ]
    assert balances(account) == before


def test_a_live_account_or_charlie_s_account_cannot_be_funded(cast: Cast) -> None:
    live = live_account(cast.alice_org)
    charlie_usd = sandbox_account(cast.charlie_org)
    before = balances(live, charlie_usd)
    client = client_for(cast.alice)
    for account_id in (live.id, charlie_usd.id, "acct_nope", "x" * 500):
        response = post(client, "/sandbox/fund", {"account_id": account_id, "amount": "5.00"})
        assert errors_of(response, "fund_form")["account_id"] == [
            "Choose one of your test accounts."
        ]
    assert balances(live, charlie_usd) == before


def test_charlie_cannot_fund_alice_s_account_from_his_own_seat(cast: Cast) -> None:
    alice_usd = sandbox_account(cast.alice_org)
    before = balances(alice_usd)
    response = post(
        client_for(cast.charlie), "/sandbox/fund", {"account_id": alice_usd.id, "amount": "5"}
    )
    assert "account_id" in errors_of(response, "fund_form")
    assert balances(alice_usd) == before


def test_bob_the_viewer_gets_403_and_nothing_moves(cast: Cast) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    transfer = make_transfer(cast, source=usd, destination=other)
    before = balances(usd, other)
    bob = client_for(cast.bob)
    assert post(bob, "/sandbox/fund", {"account_id": usd.id, "amount": "5"}).status_code == 403
    made = {"source": usd.id, "destination": other.id, "amount": "1", "outcome": "settle"}
    assert post(bob, "/sandbox/transfer", made).status_code == 403
    assert post(bob, f"/sandbox/transfers/{transfer.id}/fail").status_code == 403
    assert post(bob, "/sandbox/").status_code == 403
    assert balances(usd, other) == before
    transfer.refresh_from_db()
    assert transfer.fail_at_settlement == ""
    assert Transfer.objects.filter(holder=cast.alice_org.id).count() == 1


def test_a_post_without_the_csrf_token_is_refused_and_nothing_moves(cast: Cast) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    transfer = make_transfer(cast, source=usd, destination=other)
    before = balances(usd, other)
    client = client_for(cast.alice)
    assert client.post("/sandbox/fund", {"account_id": usd.id, "amount": "5"}).status_code == 403
    made = {"source": usd.id, "destination": other.id, "amount": "1", "outcome": "settle"}
    assert client.post("/sandbox/transfer", made).status_code == 403
    assert client.post(f"/sandbox/transfers/{transfer.id}/fail").status_code == 403
    assert balances(usd, other) == before
    transfer.refresh_from_db()
    assert transfer.fail_at_settlement == ""


def test_the_tools_only_answer_a_post(cast: Cast) -> None:
    client = client_for(cast.alice)
    assert client.get("/sandbox/fund").status_code == 405
    assert client.get("/sandbox/transfer").status_code == 405


# Transfers -----------------------------------------------------------------------------------


def make_transfer(
    cast: Cast, *, source: Account | None = None, destination: Account | None = None
) -> Transfer:
    source = source or sandbox_account(cast.alice_org)
    destination = destination or second_account(cast.alice_org)
    return payments.transfer_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=source.id, destination_id=destination.id, amount=100, currency="USD"
        ),
    )


def transfer_form(source: Account, destination: Account, /, **fields: str) -> dict[str, str]:
    return {
        "source": source.id,
        "destination": destination.id,
        "amount": "12.34",
        "outcome": "pending",
        **fields,
    }


def test_a_test_transfer_is_pending_with_its_created_event_and_the_money_held(
    cast: Cast,
) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    [(posted, _), destination_before] = balances(usd, other)
    response = post(
        client_for(cast.alice), "/sandbox/transfer", transfer_form(usd, other), follow=True
    )
    transfer = Transfer.objects.get(holder=cast.alice_org.id)
    assert (transfer.status, transfer.amount, transfer.settlement) == ("pending", 1234, "auto")
    assert (transfer.source_id, transfer.destination_id, transfer.livemode) == (
        usd.id,
        other.id,
        False,
    )
    assert events_of(transfer) == ["transfer.created"]
    assert balances(usd, other) == [(posted, 1234), destination_before]
    page = response.content.decode()
    assert f"Transfer {transfer.id} is pending" in page
    assert f'action="/sandbox/transfers/{transfer.id}/fail"' in page


def test_settle_now_moves_the_money_at_once(cast: Cast) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    [(source_posted, _), (destination_posted, _)] = balances(usd, other)
    post(client_for(cast.alice), "/sandbox/transfer", transfer_form(usd, other, outcome="settle"))
    transfer = Transfer.objects.get(holder=cast.alice_org.id)
    assert transfer.status == "settled"
    assert events_of(transfer) == ["transfer.created", "transfer.settled"]
    assert balances(usd, other) == [(source_posted - 1234, 0), (destination_posted + 1234, 0)]


def test_a_transfer_made_to_fail_fails_when_settlement_runs(cast: Cast) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    before = balances(usd, other)
    post(client_for(cast.alice), "/sandbox/transfer", transfer_form(usd, other, outcome="fail"))
    transfer = Transfer.objects.get(holder=cast.alice_org.id)
    assert transfer.status == "pending"
    payments.transfers_settle_due()
    transfer.refresh_from_db()
    assert (transfer.status, transfer.failure_reason) == ("failed", "test_helper")
    assert events_of(transfer) == ["transfer.created", "transfer.failed"]
    assert balances(usd, other) == before


def test_the_fail_button_makes_a_pending_transfer_fail_at_settlement(cast: Cast) -> None:
    transfer = make_transfer(cast)
    response = post(client_for(cast.alice), f"/sandbox/transfers/{transfer.id}/fail", follow=True)
    assert f"{transfer.id} will fail when it comes to settle." in response.content.decode()
    payments.transfers_settle_due()
    transfer.refresh_from_db()
    assert (transfer.status, transfer.failure_reason) == ("failed", "test_helper")
    assert Event.objects.filter(type="transfer.failed", data__object__id=transfer.id).exists()


def test_a_transfer_that_already_settled_cannot_be_made_to_fail(cast: Cast) -> None:
    transfer = make_transfer(cast)
    payments.transfers_settle_due()
    response = post(client_for(cast.alice), f"/sandbox/transfers/{transfer.id}/fail", follow=True)
    assert "This transfer is no longer pending." in response.content.decode()
    transfer.refresh_from_db()
    assert (transfer.status, transfer.fail_at_settlement) == ("settled", "")


def test_charlie_gets_404_for_alice_s_transfer_and_it_still_settles(cast: Cast) -> None:
    transfer = make_transfer(cast)
    for url in (f"/sandbox/transfers/{transfer.id}/fail", "/sandbox/transfers/tr_nope/fail"):
        assert post(client_for(cast.charlie), url).status_code == 404
    payments.transfers_settle_due()
    transfer.refresh_from_db()
    assert transfer.status == "settled"


def test_a_live_transfer_cannot_be_made_to_fail_here(cast: Cast) -> None:
    source, destination = live_account(cast.alice_org), live_account(cast.alice_org, 0)
    transfer = payments.transfer_create(
        organization_id=cast.alice_org.id,
        livemode=True,
        spec=ledger.TransferSpec(
            source_id=source.id, destination_id=destination.id, amount=100, currency="USD"
        ),
    )
    assert post(client_for(cast.alice), f"/sandbox/transfers/{transfer.id}/fail").status_code == 404
    transfer.refresh_from_db()
    assert transfer.fail_at_settlement == ""


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"amount": "100000.00"}, "amount", "The source account has too little available."),
        ({"amount": "0.001"}, "amount", "USD has at most 2 decimal places."),
        ({"amount": ""}, "amount", "This field is required."),
        ({"destination": "same"}, "destination", "Choose an account other than the source."),
        ({"destination": "eur"}, "destination", "Choose an account in USD, like the source."),
        ({"destination": "live"}, "destination", "Choose one of your test accounts."),
        ({"destination": "charlie"}, "destination", "Choose one of your test accounts."),
        ({"source": "charlie"}, "source", "Choose one of your test accounts."),
        ({"source": "live"}, "source", "Choose one of your test accounts."),
        ({"outcome": "teleport"}, "outcome", "Select a valid choice."),
        ({"description": "x" * 501}, "description", "at most 500 characters"),
    ],
)
def test_refused_transfers_say_why_next_to_the_field_and_nothing_moves(
    cast: Cast, change: dict[str, str], field: str, message: str
) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    named = {
        "same": usd.id,
        "eur": sandbox_account(cast.alice_org, "EUR").id,
        "live": live_account(cast.alice_org).id,
        "charlie": sandbox_account(cast.charlie_org).id,
    }
    everyone = [usd, other, *(Account.objects.get(id=i) for i in named.values() if i != usd.id)]
    before = balances(*everyone)
    data = transfer_form(usd, other, **{k: named.get(v, v) for k, v in change.items()})
    response = post(client_for(cast.alice), "/sandbox/transfer", data)
    assert response.status_code == 200
    assert any(message in error for error in errors_of(response, "transfer_form")[field])
    assert balances(*everyone) == before
    assert not Transfer.objects.filter(holder__in=[cast.alice_org.id, cast.charlie_org.id]).exists()


def test_a_frozen_account_is_refused_with_a_plain_message(cast: Cast) -> None:
    usd, other = sandbox_account(cast.alice_org), second_account(cast.alice_org)
    ledger.account_freeze(account_id=other.id)
    before = balances(usd, other)
    response = post(client_for(cast.alice), "/sandbox/transfer", transfer_form(usd, other))
    assert errors_of(response, "transfer_form")["destination"] == [
        "This account is frozen: no money moves in or out."
    ]
    assert balances(usd, other) == before
    assert not Transfer.objects.filter(holder=cast.alice_org.id).exists()


def test_recent_test_transfers_are_listed_with_their_status(cast: Cast) -> None:
    settled = make_transfer(cast)
    payments.transfers_settle_due()
    pending = make_transfer(cast)
    page = client_for(cast.alice).get("/sandbox/").content.decode()
    assert settled.id in page and pending.id in page
    assert '<span class="badge ok">settled</span>' in page
    assert '<span class="badge wait">pending</span>' in page
    assert f"/sandbox/transfers/{pending.id}/fail" in page
    assert f"/sandbox/transfers/{settled.id}/fail" not in page
