"""Worked examples: each step's exact balances, as an accountant would check them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ledger import errors, selectors
from ledger import services as ledger
from ledger.models import Account, Entry, Settlement, Transfer, TransferStatus
from tests.factories import HOLDER, open_account, system_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("constraints_checked_now")]


def balances(account: Account) -> tuple[int, int, int]:
    """(posted, held, available) as stored."""
    balance = selectors.account_balance(account_id=account.id)
    return balance.posted, balance.held, balance.available


def pay(source: Account, destination: Account, amount: int, **extra: object) -> Transfer:
    return ledger.transfer_create(
        holder=source.holder,
        livemode=source.livemode,
        source_id=source.id,
        destination_id=destination.id,
        amount=amount,
        currency=source.currency_id,
        **extra,  # type: ignore[arg-type]
    ).transfer


def test_a_deposit_credits_the_account_and_debits_the_funding_source() -> None:
    funding = system_account("USD")
    alice = open_account("USD", balance=10_000, funding=funding)
    assert balances(alice) == (10_000, 0, 10_000)
    funding.refresh_from_db()
    assert funding.posted == -10_000, "money entering the books is still double entry"
    [entry] = selectors.account_entries(account_id=alice.id)
    assert (entry.amount, entry.balance_after, entry.seq) == (10_000, 10_000, 1)


def test_a_payment_holds_at_once_and_posts_at_settlement() -> None:
    alice = open_account("USD", balance=10_000)
    shop = open_account("USD", holder="shop")
    transfer = pay(alice, shop, 2_550, settlement=Settlement.MANUAL)
    assert transfer.status == TransferStatus.PENDING
    assert balances(alice) == (10_000, 2_550, 7_450)
    assert balances(shop) == (0, 0, 0), "a hold does not touch the destination"

    settled = ledger.transfer_settle(transfer_id=transfer.id)
    assert settled.status == TransferStatus.SETTLED
    assert settled.settled_amount == 2_550
    assert settled.version == 2
    assert balances(alice) == (7_450, 0, 7_450)
    assert balances(shop) == (2_550, 0, 2_550)
    entries = Entry.objects.filter(transfer=transfer).order_by("amount")
    assert [(e.account_id, e.amount) for e in entries] == [(alice.id, -2_550), (shop.id, 2_550)]


def test_a_partial_settlement_releases_the_rest_of_the_hold() -> None:
    alice = open_account("USD", balance=10_000)
    hotel = open_account("USD", holder="hotel")
    transfer = pay(alice, hotel, 5_000, settlement=Settlement.MANUAL)
    ledger.transfer_settle(transfer_id=transfer.id, amount=3_210)
    assert balances(alice) == (6_790, 0, 6_790)
    assert balances(hotel) == (3_210, 0, 3_210)


def test_a_void_releases_the_hold_and_posts_nothing() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    transfer = pay(alice, shop, 400, settlement=Settlement.MANUAL)
    voided = ledger.transfer_void(transfer_id=transfer.id)
    assert voided.status == TransferStatus.VOIDED
    assert balances(alice) == (1_000, 0, 1_000)
    assert not Entry.objects.filter(transfer=transfer).exists()
    with pytest.raises(errors.TransferNotPending):
        ledger.transfer_settle(transfer_id=transfer.id)


def test_an_expired_hold_is_voided_by_the_periodic_sweep() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    soon = timezone.now() + dt.timedelta(minutes=5)
    transfer = pay(alice, shop, 700, settlement=Settlement.MANUAL, hold_expires_at=soon)
    assert ledger.transfer_expire_due(now=timezone.now()) == []
    assert balances(alice) == (1_000, 700, 300)
    [expired] = ledger.transfer_expire_due(now=soon + dt.timedelta(seconds=1))
    assert expired.id == transfer.id
    assert (expired.status, expired.failure_reason) == (TransferStatus.VOIDED, "hold_expired")
    assert balances(alice) == (1_000, 0, 1_000)


def test_settling_after_the_hold_expired_fails_the_transfer() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    past = timezone.now() - dt.timedelta(seconds=1)
    transfer = pay(alice, shop, 700, settlement=Settlement.MANUAL, hold_expires_at=past)
    failed = ledger.transfer_settle(transfer_id=transfer.id)
    assert (failed.status, failed.failure_reason) == (TransferStatus.FAILED, "hold_expired")
    assert balances(alice) == (1_000, 0, 1_000)
    assert balances(shop) == (0, 0, 0)


def test_a_reversal_is_a_new_opposite_posting() -> None:
    alice = open_account("USD", balance=5_000)
    shop = open_account("USD", holder="shop")
    transfer = pay(alice, shop, 1_999, settlement=Settlement.MANUAL)
    ledger.transfer_settle(transfer_id=transfer.id)
    result = ledger.transfer_reverse(transfer_id=transfer.id)
    assert result.original.status == TransferStatus.REVERSED
    assert result.reversal.status == TransferStatus.SETTLED
    assert result.reversal.reversal_of_id == transfer.id
    assert (result.reversal.source_id, result.reversal.destination_id) == (shop.id, alice.id)
    assert balances(alice) == (5_000, 0, 5_000)
    assert balances(shop) == (0, 0, 0)
    history = selectors.account_entries(account_id=alice.id)
    assert [(e.amount, e.balance_after, e.seq) for e in history] == [
        (1_999, 5_000, 3),
        (-1_999, 3_001, 2),
        (5_000, 5_000, 1),
    ], "the original entries stay; the reversal adds new ones"
    with pytest.raises(errors.TransferNotSettled):
        ledger.transfer_reverse(transfer_id=transfer.id)


def test_an_overdraft_limit_lets_an_account_go_that_far_below_zero_and_no_further() -> None:
    alice = open_account("USD", balance=100, overdraft_limit=500)
    shop = open_account("USD", holder="shop")
    assert balances(alice) == (100, 0, 600)
    transfer = pay(alice, shop, 600, settlement=Settlement.MANUAL)
    assert balances(alice) == (100, 600, 0)
    with pytest.raises(errors.InsufficientFunds):
        pay(alice, shop, 1)
    ledger.transfer_settle(transfer_id=transfer.id)
    assert balances(alice) == (-500, 0, 0)


@pytest.mark.parametrize(
    ("currency", "exponent", "amount"), [("JPY", 0, 1_500), ("KWD", 3, 12_345), ("USD", 2, 1)]
)
def test_amounts_are_integers_in_each_currencys_minor_unit(
    currency: str, exponent: int, amount: int
) -> None:
    assert selectors.currency_exponents()[currency] == exponent
    alice = open_account(currency, balance=amount * 3)
    shop = open_account(currency, holder="shop")
    transfer = pay(alice, shop, amount, settlement=Settlement.MANUAL)
    ledger.transfer_settle(transfer_id=transfer.id)
    assert balances(alice) == (amount * 2, 0, amount * 2)
    assert balances(shop) == (amount, 0, amount)


def test_auto_transfers_are_settled_by_the_batch_sweep_one_credit_per_destination() -> None:
    alice = open_account("USD", balance=10_000)
    bob = open_account("USD", balance=10_000, holder="bob")
    shop = open_account("USD", holder="shop")
    for payer in (alice, bob, alice):
        pay(payer, shop, 1_000)
    report = ledger.transfer_settle_due()
    assert len(report.settled) == 3
    assert report.failed == []
    assert balances(shop) == (3_000, 0, 3_000)
    assert [e.balance_after for e in selectors.account_entries(account_id=shop.id)] == [
        3_000,
        2_000,
        1_000,
    ]
    assert balances(alice) == (8_000, 0, 8_000)
    assert ledger.transfer_settle_due().settled == []


def test_the_sweep_fails_what_cannot_settle_and_releases_its_hold() -> None:
    alice = open_account("USD", balance=10_000)
    frozen = open_account("USD", holder="shop")
    shop = open_account("USD", holder="shop")
    doomed = pay(alice, frozen, 1_000)
    asked = pay(alice, shop, 2_000)
    fine = pay(alice, shop, 3_000)
    ledger.account_freeze(account_id=frozen.id)
    ledger.transfer_mark_to_fail(transfer_id=asked.id, reason="test_helper")
    report = ledger.transfer_settle_due()
    assert [t.id for t in report.settled] == [fine.id]
    assert {(t.id, t.failure_reason) for t in report.failed} == {
        (doomed.id, "account_frozen"),
        (asked.id, "test_helper"),
    }
    assert balances(alice) == (7_000, 0, 7_000)


def test_a_batch_is_all_or_nothing() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    spec = ledger.TransferSpec(
        source_id=alice.id, destination_id=shop.id, amount=400, currency="USD"
    )
    with pytest.raises(errors.BatchItemError) as caught:
        ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=[spec, spec, spec])
    assert caught.value.index == 2
    assert caught.value.code == "insufficient_funds"
    assert balances(alice) == (1_000, 0, 1_000)
    assert not Transfer.objects.filter(source=alice).exists()
    made = ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=[spec, spec])
    assert [t.status for t in made] == ["pending", "pending"]
    assert balances(alice) == (1_000, 800, 200)


def test_a_batch_keeps_each_holds_expiry() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    expires = timezone.now() + dt.timedelta(hours=2)
    specs = [
        ledger.TransferSpec(alice.id, shop.id, 100, "USD", Settlement.MANUAL, hold_expires_at=when)
        for when in (expires, None)
    ]
    made = ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=specs)
    stored = [Transfer.objects.get(id=t.id).hold_expires_at for t in made]
    assert stored == [expires, None]


def test_a_client_reference_makes_a_transfer_once() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    first = ledger.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=300,
        currency="USD",
        client_reference="order-17",
    )
    again = ledger.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=300,
        currency="USD",
        client_reference="order-17",
    )
    assert first.created and not again.created
    assert again.transfer.id == first.transfer.id
    assert balances(alice) == (1_000, 300, 700)
    with pytest.raises(errors.ClientReferenceReused, match="amount"):
        ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=301,
            currency="USD",
            client_reference="order-17",
        )


def test_balance_as_of_reads_the_past() -> None:
    alice = open_account("USD", balance=1_000)
    between = timezone.now()
    shop = open_account("USD", holder="shop")
    ledger.transfer_settle(transfer_id=pay(alice, shop, 250, settlement=Settlement.MANUAL).id)
    assert selectors.balance_as_of(account_id=alice.id, at=between) == 1_000
    assert selectors.balance_as_of(account_id=alice.id, at=timezone.now()) == 750
    assert selectors.balance_as_of(account_id=alice.id, at=between - dt.timedelta(days=1)) == 0


def test_history_pages_by_sequence_newest_first() -> None:
    funding = system_account("USD")
    alice = open_account("USD")
    for amount in range(1, 8):
        ledger.transfer_post(
            holder="platform",
            livemode=False,
            source_id=funding.id,
            destination_id=alice.id,
            amount=amount,
            currency="USD",
        )
    first = selectors.account_entries(account_id=alice.id, limit=3)
    assert [e.amount for e in first] == [7, 6, 5]
    second = selectors.account_entries(account_id=alice.id, before_seq=first[-1].seq, limit=3)
    assert [e.amount for e in second] == [4, 3, 2]
