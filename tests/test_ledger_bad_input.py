"""Bad input: every way a caller can get a transfer wrong is refused with its own typed
error (the exact class and its stable `code`), and a refused call changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from ledger import errors
from ledger import services as ledger
from ledger.models import MAX_AMOUNT, Account, Entry, Settlement, Transfer, TransferStatus
from tests.factories import HOLDER, open_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("constraints_checked_now")]

NO_SUCH_ACCOUNT = "acct_00000000000000000000000000"


def books() -> tuple[object, ...]:
    """Everything a refused call must leave as it was."""
    return (
        list(
            Account.objects.order_by("id").values_list(
                "id", "status", "posted", "held", "entry_count"
            )
        ),
        list(
            Transfer.objects.order_by("id").values_list(
                "id", "status", "settled_amount", "fail_at_settlement", "version"
            )
        ),
        Transfer.objects.count(),
        Entry.objects.count(),
    )


@contextmanager
def refused(
    error: type[errors.LedgerError], code: str
) -> Iterator[pytest.ExceptionInfo[errors.LedgerError]]:
    """The block raises exactly `error`, with `code`, and the books are untouched."""
    before = books()
    with pytest.raises(error) as caught:
        yield caught
    assert type(caught.value) is error, f"{type(caught.value).__name__}, not {error.__name__}"
    assert caught.value.code == code
    assert books() == before, "a refused call changes nothing"


def pay(source: Account, destination: Account, amount: object = 100, **extra: object) -> Transfer:
    return ledger.transfer_create(
        holder=source.holder,
        livemode=source.livemode,
        source_id=source.id,
        destination_id=destination.id,
        amount=amount,  # type: ignore[arg-type]
        currency=source.currency_id,
        **extra,  # type: ignore[arg-type]
    ).transfer


@pytest.fixture
def alice() -> Account:
    return open_account("USD", balance=10_000)


@pytest.fixture
def shop() -> Account:
    return open_account("USD", holder="shop")


# Amounts ------------------------------------------------------------------------------

BAD_AMOUNTS = [
    pytest.param(0, id="zero"),
    pytest.param(-100, id="negative"),
    pytest.param(10.5, id="fractional"),
    pytest.param(10.0, id="float"),
    pytest.param(Decimal("100"), id="decimal"),
    pytest.param("100", id="string"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="none"),
    pytest.param(2**63, id="beyond-bigint"),
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_a_transfer_amount_is_a_positive_integer_of_minor_units_that_fits_a_bigint(
    alice: Account, shop: Account, amount: object
) -> None:
    with refused(errors.InvalidAmount, "invalid_amount") as caught:
        pay(alice, shop, amount)
    assert caught.value.param == "amount"


@pytest.mark.parametrize(
    "amount",
    # None is not here: settling with no amount settles all that was held.
    [param for param in BAD_AMOUNTS if param.values != (None,)],
)
def test_a_settlement_amount_is_a_positive_integer_of_minor_units_that_fits_a_bigint(
    alice: Account, shop: Account, amount: object
) -> None:
    transfer = pay(alice, shop, 1_000, settlement=Settlement.MANUAL)
    with refused(errors.InvalidAmount, "invalid_amount"):
        ledger.transfer_settle(transfer_id=transfer.id, amount=amount)  # type: ignore[arg-type]


def test_the_largest_bigint_is_a_valid_amount_refused_only_for_want_of_funds(
    alice: Account, shop: Account
) -> None:
    with refused(errors.InsufficientFunds, "insufficient_funds"):
        pay(alice, shop, MAX_AMOUNT)


def test_a_hold_beyond_what_is_available_is_refused(alice: Account, shop: Account) -> None:
    with refused(errors.InsufficientFunds, "insufficient_funds"):
        pay(alice, shop, 10_001)


# Currencies ---------------------------------------------------------------------------

UNKNOWN_CURRENCIES = [
    pytest.param("XXX", id="XXX-no-currency"),
    pytest.param("usd", id="lower-case"),
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
    pytest.param(123, id="number"),
]


@pytest.mark.parametrize("currency", UNKNOWN_CURRENCIES)
def test_a_transfer_in_an_unknown_currency_is_refused(
    alice: Account, shop: Account, currency: object
) -> None:
    with refused(errors.UnknownCurrency, "unknown_currency") as caught:
        ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=100,
            currency=currency,  # type: ignore[arg-type]
        )
    assert caught.value.param == "currency"


@pytest.mark.parametrize("currency", UNKNOWN_CURRENCIES)
def test_an_account_in_an_unknown_currency_cannot_be_opened(currency: object) -> None:
    with refused(errors.UnknownCurrency, "unknown_currency"):
        ledger.account_open(holder=HOLDER, livemode=False, currency=currency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source_currency", "destination_currency", "currency", "message"),
    [
        ("USD", "USD", "JPY", "the source account holds USD, not JPY"),
        ("USD", "JPY", "USD", "the destination account holds JPY, not USD"),
        ("USD", "JPY", "JPY", "the source account holds USD, not JPY"),
    ],
    ids=["neither-account", "not-the-destination", "not-the-source"],
)
def test_a_transfer_is_in_the_currency_of_both_its_accounts(
    source_currency: str, destination_currency: str, currency: str, message: str
) -> None:
    source = open_account(source_currency, balance=10_000)
    destination = open_account(destination_currency, holder="shop")
    with refused(errors.CurrencyMismatch, "currency_mismatch") as caught:
        ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=source.id,
            destination_id=destination.id,
            amount=100,
            currency=currency,
        )
    assert (str(caught.value), caught.value.param) == (message, "currency")


# Live and test mode -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_live", "destination_live", "livemode", "side"),
    [
        (False, False, True, "source_account"),
        (False, True, False, "destination_account"),
        (False, True, True, "source_account"),
    ],
    ids=["neither-account", "not-the-destination", "not-the-source"],
)
def test_an_account_of_the_other_mode_is_not_found(
    source_live: bool, destination_live: bool, livemode: bool, side: str
) -> None:
    """Test and live mode are separate books: the other mode's accounts do not exist."""
    source = open_account("USD", balance=10_000, livemode=source_live)
    destination = open_account("USD", holder="shop", livemode=destination_live)
    with refused(errors.AccountNotFound, "not_found") as caught:
        ledger.transfer_create(
            holder=HOLDER,
            livemode=livemode,
            source_id=source.id,
            destination_id=destination.id,
            amount=100,
            currency="USD",
        )
    assert (str(caught.value), caught.value.param) == (f"no such {side.replace('_', ' ')}", side)


# Accounts: the same on both sides, frozen, closed, another holder's ---------------------


def test_an_account_cannot_pay_itself(alice: Account) -> None:
    with refused(errors.SameAccount, "same_account"):
        pay(alice, alice)


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_no_money_leaves_or_enters_a_frozen_account(
    alice: Account, shop: Account, side: str
) -> None:
    ledger.account_freeze(account_id=(alice if side == "source_account" else shop).id)
    with refused(errors.AccountFrozen, "account_frozen") as caught:
        pay(alice, shop)
    assert caught.value.param == side


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_no_money_leaves_or_enters_a_closed_account(
    alice: Account, shop: Account, side: str
) -> None:
    # Only an empty account can be closed: the source is a new one, so its closure (not
    # its lack of funds) must be what refuses the payment.
    source = open_account("USD") if side == "source_account" else alice
    ledger.account_close(account_id=(source if side == "source_account" else shop).id)
    with refused(errors.AccountClosed, "account_closed") as caught:
        pay(source, shop)
    assert caught.value.param == side


def test_another_holders_account_is_not_found_rather_than_forbidden(alice: Account) -> None:
    """A tenant cannot even learn that someone else's account exists."""
    mallory = open_account("USD", holder="mallory")
    with refused(errors.AccountNotFound, "not_found") as caught:
        ledger.transfer_create(
            holder="mallory",
            livemode=False,
            source_id=alice.id,
            destination_id=mallory.id,
            amount=100,
            currency="USD",
        )
    assert (str(caught.value), caught.value.param) == ("no such source account", "source_account")


def test_a_source_that_does_not_exist_is_not_found(shop: Account) -> None:
    with refused(errors.AccountNotFound, "not_found") as caught:
        ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=NO_SUCH_ACCOUNT,
            destination_id=shop.id,
            amount=100,
            currency="USD",
        )
    assert (str(caught.value), caught.value.param) == ("no such source account", "source_account")


def test_a_destination_that_does_not_exist_is_not_found(alice: Account) -> None:
    with refused(errors.AccountNotFound, "not_found") as caught:
        ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=NO_SUCH_ACCOUNT,
            amount=100,
            currency="USD",
        )
    assert caught.value.param == "destination_account"


def test_another_holders_transfer_is_not_found(alice: Account, shop: Account) -> None:
    transfer = pay(alice, shop, settlement=Settlement.MANUAL)
    with refused(errors.TransferNotFound, "not_found"):
        ledger.transfer_settle(transfer_id=transfer.id, holder="mallory")


@pytest.mark.parametrize(
    "change",
    [ledger.account_freeze, ledger.account_unfreeze, ledger.account_close],
    ids=["freeze", "unfreeze", "close"],
)
def test_an_account_that_does_not_exist_cannot_change_status(
    change: Callable[..., Account],
) -> None:
    with refused(errors.AccountNotFound, "not_found"):
        change(account_id=NO_SUCH_ACCOUNT)


# Settling -----------------------------------------------------------------------------


def settled(transfer: Transfer) -> None:
    ledger.transfer_settle(transfer_id=transfer.id)


def voided(transfer: Transfer) -> None:
    ledger.transfer_void(transfer_id=transfer.id)


def failed(transfer: Transfer) -> None:
    ledger.transfer_mark_to_fail(transfer_id=transfer.id, reason="card_declined")
    ledger.transfer_settle(transfer_id=transfer.id)


def reversed_(transfer: Transfer) -> None:
    ledger.transfer_settle(transfer_id=transfer.id)
    ledger.transfer_reverse(transfer_id=transfer.id)


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (settled, TransferStatus.SETTLED),
        (voided, TransferStatus.VOIDED),
        (failed, TransferStatus.FAILED),
        (reversed_, TransferStatus.REVERSED),
    ],
    ids=["settled", "voided", "failed", "reversed"],
)
def test_only_a_pending_transfer_can_be_settled(
    alice: Account, shop: Account, end: Callable[[Transfer], None], status: str
) -> None:
    transfer = pay(alice, shop, 1_000, settlement=Settlement.MANUAL)
    end(transfer)
    transfer.refresh_from_db()
    assert transfer.status == status
    with refused(errors.TransferNotPending, "transfer_not_pending"):
        ledger.transfer_settle(transfer_id=transfer.id)


def test_a_settlement_cannot_post_more_than_was_held(alice: Account, shop: Account) -> None:
    transfer = pay(alice, shop, 1_000, settlement=Settlement.MANUAL)
    with refused(errors.AmountExceedsHold, "amount_exceeds_hold") as caught:
        ledger.transfer_settle(transfer_id=transfer.id, amount=1_001)
    assert caught.value.param == "amount"


def test_only_a_settled_transfer_can_be_reversed(alice: Account, shop: Account) -> None:
    transfer = pay(alice, shop, 1_000, settlement=Settlement.MANUAL)
    with refused(errors.TransferNotSettled, "transfer_not_settled"):
        ledger.transfer_reverse(transfer_id=transfer.id)


# Batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1_001])
def test_a_batch_holds_one_to_a_thousand_transfers(
    alice: Account, shop: Account, size: int
) -> None:
    spec = ledger.TransferSpec(source_id=alice.id, destination_id=shop.id, amount=1, currency="USD")
    with refused(errors.BatchTooLarge, "batch_too_large"):
        ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=[spec] * size)


@pytest.mark.parametrize("size", [1, 1_000])
def test_a_batch_of_one_or_of_a_thousand_is_accepted(
    alice: Account, shop: Account, size: int
) -> None:
    spec = ledger.TransferSpec(source_id=alice.id, destination_id=shop.id, amount=1, currency="USD")
    made = ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=[spec] * size)
    assert len(made) == size
    alice.refresh_from_db()
    assert (alice.posted, alice.held) == (10_000, size)


def test_a_bad_item_in_a_batch_is_named_by_its_index_and_nothing_is_held(
    alice: Account, shop: Account
) -> None:
    good = ledger.TransferSpec(source_id=alice.id, destination_id=shop.id, amount=1, currency="USD")
    bad = ledger.TransferSpec(source_id=alice.id, destination_id=shop.id, amount=0, currency="USD")
    with refused(errors.BatchItemError, "invalid_amount") as caught:
        ledger.transfer_batch_create(holder=HOLDER, livemode=False, specs=[good, good, bad])
    assert caught.value.index == 2  # type: ignore[attr-defined]
    assert type(caught.value.error) is errors.InvalidAmount  # type: ignore[attr-defined]


def test_an_unknown_settlement_is_a_typed_error() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    with pytest.raises(errors.InvalidSettlement) as caught:
        ledger.transfer_create(
            holder=alice.holder,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=1,
            currency="USD",
            settlement="bogus",  # type: ignore[arg-type]
        )
    assert caught.value.code == "validation_error"
