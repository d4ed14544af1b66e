"""The ledger against a reference model.

Hypothesis runs random sequences of operations on ledger.services and, side by side, on
a few lines of plain Python (the model) that say what each operation must do: succeed
and move these amounts, or fail with this typed error and change nothing. After every
step the stored books must equal the model and keep the ledger's invariants.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import errors
from ledger import services as ledger
from ledger.models import Account, AccountKind, Entry, Settlement, Transfer

# transaction=False: the whole test runs in one transaction, rolled back at the end.
pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("constraints_checked_now"),
]

CURRENCIES = ("USD", "JPY")
UNUSED_CURRENCY = "KWD"  # known to the ledger, but no account here holds it
HOLDERS = ("alice", "bob")

PENDING, SETTLED, VOIDED, FAILED, REVERSED = "pending", "settled", "voided", "failed", "reversed"
OPEN, FROZEN, CLOSED = "open", "frozen", "closed"

# Amounts around what accounts hold, plus the ones that matter most: exactly what is
# available (must succeed) and one more (must fail with InsufficientFunds).
AMOUNTS = st.one_of(
    st.integers(1, 5_000),
    st.sampled_from(["available", "half available", "available + 1"]),
)
SETTLE_AMOUNTS = st.one_of(
    st.none(),
    st.integers(1, 15_000),
    st.sampled_from(["the hold", "half the hold", "the hold + 1"]),
)
OVERDRAFT_LIMITS = st.one_of(st.just(0), st.integers(1, 5_000))

# Which transfer an operation acts on: mostly one it can act on, sometimes any.
WHICH_TRANSFER = st.sampled_from(["ready", "ready", "ready", "any"])

Error = type[errors.LedgerError]


# The model -------------------------------------------------------------------------------


@dataclass
class ModelAccount:
    id: str
    holder: str
    currency: str
    kind: str
    overdraft_limit: int = 0
    status: str = OPEN
    posted: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.posted - self.held + self.overdraft_limit


@dataclass
class ModelTransfer:
    id: str
    source: str
    destination: str
    amount: int
    settlement: str
    expired: bool = False
    status: str = PENDING
    settled_amount: int | None = None
    fail_at_settlement: str = ""
    failure_reason: str = ""


def not_open(account: ModelAccount) -> Error | None:
    """Why money cannot move in or out of the account, if it cannot."""
    return {FROZEN: errors.AccountFrozen, CLOSED: errors.AccountClosed}.get(account.status)


class LedgerMachine(RuleBasedStateMachine):
    customer_ids = Bundle("customers")

    def __init__(self) -> None:
        super().__init__()
        # A clean slate per example. Hypothesis builds one machine per example, all
        # inside the one test function and so inside pytest-django's test transaction.
        # Each machine opens a savepoint here and rolls back to it in teardown() (which
        # Hypothesis always calls, even when a step fails), so no example sees another's
        # rows. That matters beyond tidiness: transfer_settle_due() and
        # transfer_expire_due() act on every pending transfer in the database, and the
        # per-currency sums are over every account. Each service call still gets its own
        # nested savepoint, so a refused call rolls back only itself, as in production.
        self.example = transaction.atomic()
        self.example.__enter__()
        self.accounts: dict[str, ModelAccount] = {}
        self.transfers: dict[str, ModelTransfer] = {}
        self.platform: dict[str, str] = {}
        for currency in CURRENCIES:
            account = ledger.system_account(purpose="funding", currency=currency, livemode=False)
            self.accounts[account.id] = ModelAccount(
                account.id, account.holder, currency, AccountKind.SYSTEM
            )
            self.platform[currency] = account.id

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.example.__exit__(None, None, None)

    # Helpers -------------------------------------------------------------------------

    def refused(self, error: Error, call: Callable[[], object]) -> None:
        """The call raises exactly `error` (with its code), and nothing changes."""
        before = stored_books()
        raised: Exception | None = None
        try:
            call()
        except Exception as exc:
            raised = exc
        if type(raised) is not error:
            outcome = f"{type(raised).__name__} was raised" if raised else "the call succeeded"
            raise AssertionError(f"expected {error.__name__}, but {outcome}") from raised
        assert isinstance(raised, errors.LedgerError) and raised.code == error.code
        assert stored_books() == before, "a refused operation changes nothing"

    def post(self, transfer: ModelTransfer, amount: int) -> None:
        self.accounts[transfer.source].posted -= amount
        self.accounts[transfer.destination].posted += amount
        transfer.status, transfer.settled_amount = SETTLED, amount

    def release(self, transfer: ModelTransfer) -> None:
        self.accounts[transfer.source].held -= transfer.amount

    def has_transfer(self, status: str, **fields: object) -> bool:
        """Whether some transfer is in this state: the operations on transfers run only
        when there is one they can act on, so that steps are not wasted."""
        return any(
            t.status == status and all(getattr(t, k) == v for k, v in fields.items())
            for t in self.transfers.values()
        )

    def choose_transfer(self, data: st.DataObject, which: str, status: str) -> ModelTransfer:
        """Usually a transfer in the state the operation needs, if there is one;
        otherwise any transfer (so every refusal of the wrong state is exercised)."""
        ready = [t.id for t in self.transfers.values() if t.status == status]
        if which == "any" or not ready:
            ready = list(self.transfers)
        return self.transfers[data.draw(st.sampled_from(ready), label="transfer")]

    def why_settlement_fails(self, transfer: ModelTransfer) -> str:
        """The reason a pending transfer fails instead of settling, if any."""
        if transfer.fail_at_settlement:
            return transfer.fail_at_settlement
        if transfer.expired:
            return "hold_expired"
        for account_id in (transfer.source, transfer.destination):
            status = self.accounts[account_id].status
            if status != OPEN:
                return f"account_{status}"
        return ""

    # Accounts ------------------------------------------------------------------------

    @initialize(
        target=customer_ids,
        limits=st.lists(OVERDRAFT_LIMITS, min_size=4, max_size=4),
        deposits=st.lists(st.integers(1, 10_000), min_size=4, max_size=4),
    )
    def open_and_fund_the_first_customers(self, limits: list[int], deposits: list[int]) -> object:
        """Two customers per currency to start with, so that every example has money
        to move (more are opened by the rule below)."""
        opened = []
        for (holder, currency), limit, deposit in zip(
            [(h, c) for c in CURRENCIES for h in HOLDERS], limits, deposits, strict=True
        ):
            account_id = self.open_customer_account(holder, currency, limit)
            self.fund_from_the_platform(account_id, deposit)
            opened.append(account_id)
        return multiple(*opened)

    @rule(
        target=customer_ids,
        holder=st.sampled_from(HOLDERS),
        currency=st.sampled_from(CURRENCIES),
        overdraft_limit=OVERDRAFT_LIMITS,
    )
    def open_customer_account(self, holder: str, currency: str, overdraft_limit: int) -> str:
        account = ledger.account_open(
            holder=holder, livemode=False, currency=currency, overdraft_limit=overdraft_limit
        )
        self.accounts[account.id] = ModelAccount(
            account.id, holder, currency, AccountKind.CUSTOMER, overdraft_limit
        )
        return account.id

    @rule(account_id=customer_ids, change=st.sampled_from(["unfreeze", "freeze", "close"]))
    def change_status(self, account_id: str, change: str) -> None:
        """Freezing and unfreezing are idempotent; only an empty account can be closed,
        and a closed account stays closed."""
        account = self.accounts[account_id]
        call = partial(getattr(ledger, f"account_{change}"), account_id=account_id)
        status = {"freeze": FROZEN, "unfreeze": OPEN, "close": CLOSED}[change]
        if change == "close" and (account.posted or account.held):
            return self.refused(errors.AccountNotEmpty, call)
        if account.status == CLOSED:
            return self.refused(errors.AccountClosed, call)
        assert call().status == status
        account.status = status

    # Moving money --------------------------------------------------------------------

    @rule(account_id=customer_ids, amount=st.integers(1, 10_000))
    def fund_from_the_platform(self, account_id: str, amount: int) -> None:
        account = self.accounts[account_id]
        platform = self.accounts[self.platform[account.currency]]
        call = partial(
            ledger.transfer_post,
            holder=platform.holder,
            livemode=False,
            source_id=platform.id,
            destination_id=account.id,
            amount=amount,
            currency=account.currency,
        )
        if error := not_open(account):
            return self.refused(error, call)
        transfer = call()
        assert (transfer.status, transfer.settled_amount) == (SETTLED, amount)
        model = ModelTransfer(transfer.id, platform.id, account.id, amount, Settlement.MANUAL)
        self.transfers[transfer.id] = model
        self.post(model, amount)

    # One rule per settlement mode: holds are the heart of the ledger, so they get two
    # shares of the steps. Most requests are well formed; the rest name the source
    # itself as destination, a currency other than the source's, or come from another
    # holder, in proportions that exercise each refusal a few times per run.
    hold: dict[str, Any] = {
        "source_id": customer_ids,
        "to": st.sampled_from(
            ["a customer"] * 3 + ["the platform", "a customer in another currency", "itself"]
        ),
        "data": st.data(),
        "amount": AMOUNTS,
        "currency_of": st.sampled_from(["the source"] * 4 + ["the destination", "neither"]),
        "by": st.sampled_from(["its holder"] * 7 + ["another holder"]),
        "expiry": st.sampled_from([None, None, "past", "future"]),
    }

    @rule(**hold)
    def create_manual_transfer(self, **hold: Any) -> None:
        self.create_transfer(settlement=Settlement.MANUAL, **hold)

    @rule(**hold)
    def create_auto_transfer(self, **hold: Any) -> None:
        self.create_transfer(settlement=Settlement.AUTO, **hold)

    def create_transfer(
        self,
        *,
        source_id: str,
        to: str,
        data: st.DataObject,
        amount: int | str,
        currency_of: str,
        by: str,
        expiry: str | None,
        settlement: Settlement,
    ) -> None:
        source = self.accounts[source_id]
        destination = source
        if to != "itself":
            same_currency = to != "a customer in another currency"
            payees = [
                a.id
                for a in self.accounts.values()
                if a.kind == AccountKind.CUSTOMER
                and a.id != source.id
                and (a.currency == source.currency) == same_currency
            ]
            destination_id = self.platform[source.currency]
            if payees and to != "the platform":
                destination_id = data.draw(st.sampled_from(payees), label="destination")
            destination = self.accounts[destination_id]
        currency = {
            "the source": source.currency,
            "the destination": destination.currency,
            "neither": UNUSED_CURRENCY,
        }[currency_of]
        holder = source.holder
        if by == "another holder":
            holder = next(h for h in HOLDERS if h != source.holder)
        if amount == "available":
            amount = max(source.available, 1)
        elif amount == "half available":
            amount = max(source.available // 2, 1)
        elif amount == "available + 1":
            amount = max(source.available, 0) + 1
        assert isinstance(amount, int)
        now = timezone.now()
        expires = {"past": now - dt.timedelta(hours=1), "future": now + dt.timedelta(days=1)}
        call = partial(
            ledger.transfer_create,
            holder=holder,
            livemode=False,
            source_id=source.id,
            destination_id=destination.id,
            amount=amount,
            currency=currency,
            settlement=settlement,
            hold_expires_at=expires.get(expiry or ""),
        )

        # The model's order of refusals: the request itself, then whose account it is,
        # then each account (source first), then the funds.
        error: Error | None = None
        if source.id == destination.id:
            error = errors.SameAccount
        elif holder != source.holder:
            error = errors.AccountNotFound
        else:
            for account in (source, destination):
                if account.currency != currency:
                    error = errors.CurrencyMismatch
                else:
                    error = not_open(account)
                if error:
                    break
            else:
                if source.available < amount:
                    error = errors.InsufficientFunds
        if error:
            return self.refused(error, call)

        created = call()
        assert created.created
        assert (created.transfer.status, created.transfer.amount) == (PENDING, amount)
        self.transfers[created.transfer.id] = ModelTransfer(
            created.transfer.id,
            source.id,
            destination.id,
            amount,
            settlement,
            expired=expiry == "past",
        )
        source.held += amount

    @precondition(lambda self: self.has_transfer(PENDING))
    @rule(which=WHICH_TRANSFER, data=st.data(), amount=SETTLE_AMOUNTS)
    def settle(self, which: str, data: st.DataObject, amount: int | str | None) -> None:
        transfer = self.choose_transfer(data, which, PENDING)
        if amount == "the hold":
            amount = transfer.amount
        elif amount == "half the hold":
            amount = max(transfer.amount // 2, 1)
        elif amount == "the hold + 1":
            amount = transfer.amount + 1
        assert amount is None or isinstance(amount, int)
        call = partial(ledger.transfer_settle, transfer_id=transfer.id, amount=amount)
        if transfer.status != PENDING:
            return self.refused(errors.TransferNotPending, call)
        to_settle = transfer.amount if amount is None else amount
        if to_settle > transfer.amount:
            return self.refused(errors.AmountExceedsHold, call)
        reason = self.why_settlement_fails(transfer)
        if reason in ("account_frozen", "account_closed"):
            # By hand this is refused (unfreeze and retry); only the sweep fails it.
            source = self.accounts[transfer.source]
            destination = self.accounts[transfer.destination]
            error = not_open(source) or not_open(destination)
            assert error is not None
            return self.refused(error, call)

        result = call()
        self.release(transfer)
        if reason:
            transfer.status, transfer.failure_reason = FAILED, reason
        else:
            self.post(transfer, to_settle)
        assert (result.status, result.settled_amount, result.failure_reason) == (
            transfer.status,
            transfer.settled_amount,
            transfer.failure_reason,
        )

    @precondition(lambda self: self.has_transfer(PENDING))
    @rule(which=WHICH_TRANSFER, data=st.data())
    def void(self, which: str, data: st.DataObject) -> None:
        transfer = self.choose_transfer(data, which, PENDING)
        call = partial(ledger.transfer_void, transfer_id=transfer.id)
        if transfer.status != PENDING:
            return self.refused(errors.TransferNotPending, call)
        assert call().status == VOIDED
        self.release(transfer)
        transfer.status = VOIDED

    @precondition(lambda self: self.has_transfer(PENDING))
    @rule(
        which=WHICH_TRANSFER,
        data=st.data(),
        reason=st.sampled_from(["test_helper", "card_declined"]),
    )
    def mark_to_fail(self, which: str, data: st.DataObject, reason: str) -> None:
        transfer = self.choose_transfer(data, which, PENDING)
        call = partial(ledger.transfer_mark_to_fail, transfer_id=transfer.id, reason=reason)
        if transfer.status != PENDING:
            return self.refused(errors.TransferNotPending, call)
        assert call().fail_at_settlement == reason
        transfer.fail_at_settlement = reason

    @precondition(lambda self: self.has_transfer(SETTLED))
    @rule(which=WHICH_TRANSFER, data=st.data())
    def reverse(self, which: str, data: st.DataObject) -> None:
        original = self.choose_transfer(data, which, SETTLED)
        payer, payee = self.accounts[original.destination], self.accounts[original.source]
        call = partial(ledger.transfer_reverse, transfer_id=original.id)
        error: Error | None = None
        if original.status != SETTLED:
            error = errors.TransferNotSettled
        else:
            assert original.settled_amount is not None
            error = not_open(payer) or not_open(payee)
            customer = payer.kind == AccountKind.CUSTOMER
            if not error and customer and payer.available < original.settled_amount:
                error = errors.InsufficientFunds
        if error:
            return self.refused(error, call)

        result = call()
        assert original.settled_amount is not None
        reversal = ModelTransfer(
            result.reversal.id, payer.id, payee.id, original.settled_amount, Settlement.MANUAL
        )
        self.transfers[reversal.id] = reversal
        self.post(reversal, original.settled_amount)
        original.status = REVERSED
        assert (result.original.status, result.reversal.status) == (REVERSED, SETTLED)
        assert result.reversal.reversal_of_id == original.id

    # The workers ---------------------------------------------------------------------

    @precondition(lambda self: self.has_transfer(PENDING, settlement=Settlement.AUTO))
    @rule()
    def settle_due(self) -> None:
        report = ledger.transfer_settle_due()
        settled: set[str] = set()
        failed: set[tuple[str, str]] = set()
        for transfer in self.transfers.values():
            if transfer.status != PENDING or transfer.settlement != Settlement.AUTO:
                continue
            self.release(transfer)
            if reason := self.why_settlement_fails(transfer):
                transfer.status, transfer.failure_reason = FAILED, reason
                failed.add((transfer.id, reason))
            else:
                self.post(transfer, transfer.amount)
                settled.add(transfer.id)
        assert {t.id for t in report.settled} == settled
        assert {(t.id, t.failure_reason) for t in report.failed} == failed

    @precondition(lambda self: self.has_transfer(PENDING, expired=True))
    @rule()
    def expire_due(self) -> None:
        expired = ledger.transfer_expire_due()
        voided: set[str] = set()
        for transfer in self.transfers.values():
            if transfer.status == PENDING and transfer.expired:
                self.release(transfer)
                transfer.status, transfer.failure_reason = VOIDED, "hold_expired"
                voided.add(transfer.id)
        assert {t.id for t in expired} == voided

    # Invariants, checked after every step --------------------------------------------

    @invariant()
    def every_balance_equals_the_model(self) -> None:
        stored = {account.id: account for account in Account.objects.all()}
        assert stored.keys() == self.accounts.keys()
        for account_id, model in self.accounts.items():
            account = stored[account_id]
            assert (account.posted, account.held, account.available, account.status) == (
                model.posted,
                model.held,
                model.available,
                model.status,
            ), account_id

    @invariant()
    def every_transfer_is_in_the_state_the_model_says(self) -> None:
        stored = {
            transfer.id: (transfer.status, transfer.settled_amount, transfer.failure_reason)
            for transfer in Transfer.objects.all()
        }
        assert stored == {
            t.id: (t.status, t.settled_amount, t.failure_reason) for t in self.transfers.values()
        }

    @invariant()
    def a_posted_transfer_has_one_debit_and_one_credit_and_nothing_else_has_entries(
        self,
    ) -> None:
        postings: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for transfer_id, account_id, amount in Entry.objects.values_list(
            "transfer_id", "account_id", "amount"
        ):
            postings[transfer_id].add((account_id, amount))
        expected = {
            t.id: {(t.source, -t.settled_amount), (t.destination, t.settled_amount)}
            for t in self.transfers.values()
            if t.settled_amount is not None
        }
        assert postings == expected

    @invariant()
    def posted_is_the_running_sum_of_an_unbroken_history(self) -> None:
        history: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for account_id, seq, amount, balance_after in Entry.objects.order_by(
            "account_id", "seq"
        ).values_list("account_id", "seq", "amount", "balance_after"):
            history[account_id].append((seq, amount, balance_after))
        for account in Account.objects.all():
            entries = history[account.id]
            assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
            assert account.entry_count == len(entries)
            running = 0
            for _, amount, balance_after in entries:
                running += amount
                assert balance_after == running, account.id
            assert account.posted == running, account.id

    @invariant()
    def every_currency_sums_to_zero(self) -> None:
        totals = dict(
            Account.objects.values("currency_id")
            .annotate(total=Sum("posted"))
            .values_list("currency_id", "total")
        )
        assert totals == dict.fromkeys(CURRENCIES, 0)

    @invariant()
    def no_customer_is_below_its_overdraft_limit(self) -> None:
        for account in Account.objects.filter(kind=AccountKind.CUSTOMER):
            assert account.posted >= -account.overdraft_limit, account.id
            assert account.available >= 0, account.id


def stored_books() -> tuple[object, ...]:
    """Every stored fact a refused operation must leave as it was."""
    return (
        list(
            Account.objects.order_by("id").values_list(
                "id", "status", "posted", "held", "entry_count"
            )
        ),
        list(
            Transfer.objects.order_by("id").values_list(
                "id", "status", "settled_amount", "fail_at_settlement", "failure_reason", "version"
            )
        ),
        Entry.objects.count(),
    )


def test_the_ledger_behaves_like_its_reference_model() -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            # No example database: it would write .hypothesis/ into the working tree.
            database=None,
            # Generation only, no shrinking: on PostgreSQL shrinking a failure replays
            # hundreds of examples of database work (five minutes, Hypothesis's cap).
            # A failure prints its whole sequence of steps as found; the last one is
            # the step that failed. To shrink one, add Phase.shrink here locally.
            phases=[Phase.generate],
        ),
    )
