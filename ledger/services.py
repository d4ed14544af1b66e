"""The only place where money moves.

Every function here takes keyword arguments, runs in one database transaction and
returns what happened, so that callers (the API, the admin, the workers, events) never
re-derive it.

Locking, the same everywhere so that two transactions can never wait on each other in a
cycle (a deadlock): first transfer rows, in id order, then account rows, in id order.
Locks are `FOR NO KEY UPDATE`: inserting a transfer or an entry takes a `KEY SHARE` lock
on the accounts it references (the foreign-key check), which a plain `FOR UPDATE` would
conflict with, so a hold on account A inserting a transfer to B would wait for whoever
had locked B, outside the id order, and deadlock.
A hold locks only its source account: money leaving an account needs that account's
lock to check its funds, money arriving does not, so a popular destination is not a
point of contention until settlement, which credits it once per batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from common.ids import new_id
from ledger import errors
from ledger.models import (
    MAX_AMOUNT,
    Account,
    AccountKind,
    AccountStatus,
    Entry,
    Settlement,
    Transfer,
    TransferStatus,
)
from ledger.selectors import currency_exponents

MAX_BATCH = 1000

# Failure reasons recorded on a transfer that did not settle.
HOLD_EXPIRED = "hold_expired"
ACCOUNT_FROZEN = "account_frozen"
ACCOUNT_CLOSED = "account_closed"


# Accounts ----------------------------------------------------------------------------


def account_open(
    *,
    holder: str,
    livemode: bool,
    currency: str,
    name: str = "",
    metadata: dict[str, Any] | None = None,
    kind: AccountKind = AccountKind.CUSTOMER,
    overdraft_limit: int = 0,
) -> Account:
    code = _currency(currency)
    if isinstance(overdraft_limit, bool) or not isinstance(overdraft_limit, int):
        raise errors.InvalidAmount("overdraft_limit must be an integer", param="overdraft_limit")
    if not 0 <= overdraft_limit <= MAX_AMOUNT:
        raise errors.InvalidAmount("overdraft_limit out of range", param="overdraft_limit")
    return Account.objects.create(
        holder=holder,
        livemode=livemode,
        currency_id=code,
        name=name,
        metadata=metadata or {},
        kind=kind,
        overdraft_limit=overdraft_limit,
    )


SYSTEM_HOLDER = "platform"


def system_account(*, purpose: str, currency: str, livemode: bool) -> Account:
    """The platform's own account for `purpose` (e.g. "test funding"), opened on first
    use. System accounts may go negative: they are where money enters the books."""
    code = _currency(currency)
    lookup = {
        "holder": SYSTEM_HOLDER,
        "name": purpose,
        "currency_id": code,
        "livemode": livemode,
        "kind": AccountKind.SYSTEM,
    }
    account = Account.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(**lookup)
    except IntegrityError:  # opened at the same moment by someone else
        return Account.objects.get(**lookup)


def account_freeze(*, account_id: str) -> Account:
    """No money moves in or out of a frozen account until it is unfrozen."""
    return _account_set_status(account_id, AccountStatus.FROZEN, allowed={AccountStatus.OPEN})


def account_unfreeze(*, account_id: str) -> Account:
    return _account_set_status(account_id, AccountStatus.OPEN, allowed={AccountStatus.FROZEN})


def account_close(*, account_id: str) -> Account:
    """Closing is final, and only for an account that holds nothing."""
    with transaction.atomic():
        account = _lock_account(account_id)
        if account.posted != 0 or account.held != 0:
            raise errors.AccountNotEmpty("an account must be empty to be closed")
        return _account_set_status(
            account_id, AccountStatus.CLOSED, allowed={AccountStatus.OPEN, AccountStatus.FROZEN}
        )


def _account_set_status(
    account_id: str, status: AccountStatus, *, allowed: set[AccountStatus]
) -> Account:
    with transaction.atomic():
        account = _lock_account(account_id)
        if account.status == AccountStatus.CLOSED:
            raise errors.AccountClosed("the account is closed")
        if account.status not in allowed:
            if account.status == status:
                return account
            raise errors.AccountFrozen(f"the account is {account.status}")
        account.status = status
        account.save(update_fields=["status"])
        return account


# Creating transfers (the hold) -------------------------------------------------------


@dataclass(frozen=True)
class TransferSpec:
    source_id: str
    destination_id: str
    amount: int
    currency: str
    settlement: Settlement = Settlement.AUTO
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    hold_expires_at: dt.datetime | None = None
    client_reference: str | None = None
    # When set, the destination must belong to this holder too.
    destination_holder: str | None = None


@dataclass(frozen=True)
class TransferCreated:
    transfer: Transfer
    # False when `client_reference` named a transfer made earlier with the same
    # fields: that transfer is returned and no money moved.
    created: bool


def transfer_create(
    *,
    holder: str,
    livemode: bool,
    source_id: str,
    destination_id: str,
    amount: int,
    currency: str,
    settlement: Settlement = Settlement.AUTO,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    hold_expires_at: dt.datetime | None = None,
    client_reference: str | None = None,
    destination_holder: str | None = None,
) -> TransferCreated:
    """Hold `amount` on the source at once; the transfer is `pending` until settled.
    With `destination_holder`, a destination of any other holder is not found."""
    if settlement not in Settlement.values:
        raise errors.InvalidSettlement("settlement is auto or manual")
    spec = TransferSpec(
        source_id=source_id,
        destination_id=destination_id,
        amount=amount,
        currency=currency,
        settlement=Settlement(settlement),
        description=description,
        metadata=metadata or {},
        hold_expires_at=hold_expires_at,
        client_reference=client_reference,
        destination_holder=destination_holder,
    )
    _validate_spec(spec)
    if client_reference is not None:
        existing = _by_client_reference(holder, livemode, client_reference)
        if existing is not None:
            return TransferCreated(_same_transfer_or_raise(existing, spec), created=False)
    if connection.vendor == "postgresql":
        transfer = _hold_in_database(holder, livemode, spec)
    else:
        transfer = _hold_in_python(holder, livemode, spec)
    if transfer is None:
        # Another request with the same client reference committed first: the unique
        # index made this one wait for it, and now it is the answer.
        existing = _by_client_reference(holder, livemode, str(client_reference))
        if existing is None:
            raise AssertionError("a client reference conflict without its transfer")
        return TransferCreated(_same_transfer_or_raise(existing, spec), created=False)
    return TransferCreated(transfer, created=True)


def _hold_in_python(holder: str, livemode: bool, spec: TransferSpec) -> Transfer | None:
    """The hold in a few statements; None if the client reference is taken."""
    try:
        with transaction.atomic():
            [transfer] = _create_pending(holder, livemode, [spec])
    except IntegrityError:
        if spec.client_reference is None:
            raise
        return None
    return transfer


def _hold_in_database(holder: str, livemode: bool, spec: TransferSpec) -> Transfer | None:
    """The hold in one round trip (ledger_transfer_hold, migrations 0005-0006); None if
    the client reference is taken. The function only says yes or no: on a no, the
    portable path runs and either names the reason or, if the reason has gone since,
    makes the hold itself."""
    transfer = _new_transfer(holder, livemode, spec)
    transfer.created_at = transfer.updated_at = timezone.now()
    outcome = _call(
        "ledger_transfer_hold",
        transfer.id,
        holder,
        livemode,
        spec.currency,
        spec.source_id,
        spec.destination_id,
        spec.amount,
        str(spec.settlement),
        spec.description,
        _Json(spec.metadata),
        spec.client_reference,
        spec.hold_expires_at,
        transfer.created_at,
        spec.destination_holder,
    )
    if outcome == "exists":
        return None
    if outcome != "held":
        return _hold_in_python(holder, livemode, spec)
    return _stored(transfer)


def _call(function: str, *arguments: object) -> str:
    """One PostgreSQL function call, one round trip."""
    placeholders = ", ".join("%s::jsonb" if isinstance(a, _Json) else "%s" for a in arguments)
    values: list[Any] = [json.dumps(a.value) if isinstance(a, _Json) else a for a in arguments]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}({placeholders})", values)
        (outcome,) = cursor.fetchone()
    return str(outcome)


@dataclass(frozen=True)
class _Json:
    value: object


def _stored(transfer: Transfer) -> Transfer:
    """Mark an instance the database function wrote as a saved row."""
    transfer._state.adding = False
    transfer._state.db = connection.alias
    return transfer


def transfer_batch_create(
    *, holder: str, livemode: bool, specs: Sequence[TransferSpec]
) -> list[Transfer]:
    """Up to MAX_BATCH transfers, all held or none: the first failing item raises
    BatchItemError naming its index, and nothing is written."""
    if not specs:
        raise errors.BatchTooLarge("a batch needs at least one transfer")
    if len(specs) > MAX_BATCH:
        raise errors.BatchTooLarge(f"a batch holds at most {MAX_BATCH} transfers")
    for index, spec in enumerate(specs):
        try:
            _validate_spec(spec)
        except errors.LedgerError as error:
            raise errors.BatchItemError(index, error) from error
        if spec.client_reference is not None:
            refused = errors.LedgerError("client_reference is not accepted in a batch")
            refused.code = "validation_error"
            raise errors.BatchItemError(index, refused)
    if connection.vendor == "postgresql":
        held = _hold_batch_in_database(holder, livemode, specs)
        if held is not None:
            return held
    with transaction.atomic():
        return _create_pending(holder, livemode, specs, batch=True)


def _hold_batch_in_database(
    holder: str, livemode: bool, specs: Sequence[TransferSpec]
) -> list[Transfer] | None:
    """All the holds set-based in one round trip (ledger_transfer_hold_batch, migration
    0007); None when refused, and the portable path then finds the failing item. Holds
    that expire also take the portable path: the function stores no expiry."""
    destination_holders = {spec.destination_holder for spec in specs}
    if len(destination_holders) != 1 or any(spec.hold_expires_at for spec in specs):
        return None
    now = timezone.now()
    transfers = [_new_transfer(holder, livemode, spec) for spec in specs]
    items = [
        {
            "id": transfer.id,
            "source": transfer.source_id,
            "destination": transfer.destination_id,
            "amount": transfer.amount,
            "currency": transfer.currency_id,
            "settlement": str(transfer.settlement),
            "description": transfer.description,
            "metadata": transfer.metadata,
        }
        for transfer in transfers
    ]
    outcome = _call(
        "ledger_transfer_hold_batch", holder, livemode, now, destination_holders.pop(), _Json(items)
    )
    if outcome != "held":
        return None
    for transfer in transfers:
        transfer.created_at = transfer.updated_at = now
        _stored(transfer)
    return transfers


def transfer_post(
    *,
    holder: str,
    livemode: bool,
    source_id: str,
    destination_id: str,
    amount: int,
    currency: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> Transfer:
    """A single-phase transfer: held and settled at once, in one transaction."""
    spec = TransferSpec(
        source_id=source_id,
        destination_id=destination_id,
        amount=amount,
        currency=currency,
        settlement=Settlement.MANUAL,
        description=description,
        metadata=metadata or {},
    )
    _validate_spec(spec)
    if connection.vendor == "postgresql":
        posted = _post_in_database(holder, livemode, spec)
        if posted is not None:
            return posted
    with transaction.atomic():
        # Both sides are written, so both are locked, in id order.
        accounts = _lock_accounts({source_id, destination_id})
        _check_spec(spec, accounts, holder, livemode, held_before=0)
        transfer = _new_transfer(holder, livemode, spec)
        transfer.save(force_insert=True)
        _apply(accounts, postings=[(transfer, amount)])
        return transfer


def _post_in_database(holder: str, livemode: bool, spec: TransferSpec) -> Transfer | None:
    """The single-phase transfer in one round trip (ledger_transfer_post, migration
    0007); None when refused, and the portable path then names the reason."""
    transfer = _new_transfer(holder, livemode, spec)
    transfer.created_at = transfer.updated_at = timezone.now()
    outcome = _call(
        "ledger_transfer_post",
        transfer.id,
        holder,
        livemode,
        spec.currency,
        spec.source_id,
        spec.destination_id,
        spec.amount,
        spec.description,
        _Json(spec.metadata),
        transfer.created_at,
        new_id("txn"),
        new_id("txn"),
    )
    if outcome != "posted":
        return None
    transfer.status = TransferStatus.SETTLED
    transfer.settled_amount = spec.amount
    transfer.version = 2
    return _stored(transfer)


def _create_pending(
    holder: str, livemode: bool, specs: Sequence[TransferSpec], *, batch: bool = False
) -> list[Transfer]:
    # Sources are locked (in id order) because their funds are checked and held;
    # destinations are only read, so a popular destination is not serialised here.
    sources = _lock_accounts({spec.source_id for spec in specs})
    destinations = _read_accounts({spec.destination_id for spec in specs} - set(sources))
    everything = {**destinations, **sources}
    holds: dict[str, int] = {}
    for index, spec in enumerate(specs):
        try:
            _check_spec(
                spec, everything, holder, livemode, held_before=holds.get(spec.source_id, 0)
            )
        except errors.LedgerError as error:
            if batch:
                raise errors.BatchItemError(index, error) from error
            raise
        holds[spec.source_id] = holds.get(spec.source_id, 0) + spec.amount
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE ledger_account SET held = held + %s WHERE id = %s",
            [(amount, account_id) for account_id, amount in sorted(holds.items())],
        )
    transfers = [_new_transfer(holder, livemode, spec) for spec in specs]
    if len(transfers) == 1:
        transfers[0].save(force_insert=True)
    else:
        Transfer.objects.bulk_create(transfers)
    return transfers


def _check_spec(
    spec: TransferSpec,
    accounts: dict[str, Account],
    holder: str,
    livemode: bool,
    *,
    held_before: int,
) -> None:
    """May `spec` move money, given the accounts as read (and, for the source, locked)
    and what earlier items of the same batch already hold on its source?"""
    source = accounts.get(spec.source_id)
    if source is None or source.holder != holder:
        raise errors.AccountNotFound("no such source account", param="source_account")
    destination = accounts.get(spec.destination_id)
    if destination is None or spec.destination_holder not in (None, destination.holder):
        raise errors.AccountNotFound("no such destination account", param="destination_account")
    _check_can_move(source, spec, livemode, side="source_account")
    _check_can_move(destination, spec, livemode, side="destination_account")
    hold = held_before + spec.amount
    if hold > MAX_AMOUNT - source.held:
        raise errors.BalanceOverflow("the hold would overflow the account")
    if source.kind != AccountKind.SYSTEM and source.available - hold < 0:
        raise errors.InsufficientFunds("the source account has too little available")


def _new_transfer(holder: str, livemode: bool, spec: TransferSpec) -> Transfer:
    return Transfer(
        holder=holder,
        livemode=livemode,
        currency_id=spec.currency,
        source_id=spec.source_id,
        destination_id=spec.destination_id,
        amount=spec.amount,
        settlement=spec.settlement,
        description=spec.description,
        metadata=spec.metadata,
        hold_expires_at=spec.hold_expires_at,
        client_reference=spec.client_reference,
    )


def _check_can_move(account: Account, spec: TransferSpec, livemode: bool, *, side: str) -> None:
    if account.livemode != livemode:
        # The other mode's books are another world: its accounts are not found here.
        raise errors.AccountNotFound(f"no such {side.replace('_', ' ')}", param=side)
    if account.currency_id != spec.currency:
        raise errors.CurrencyMismatch(
            f"the {side.replace('_', ' ')} holds {account.currency_id}, not {spec.currency}",
            param="currency",
        )
    _check_open(account, side)


def _check_open(account: Account, side: str) -> None:
    if account.status == AccountStatus.FROZEN:
        raise errors.AccountFrozen(f"the {side.replace('_', ' ')} is frozen", param=side)
    if account.status == AccountStatus.CLOSED:
        raise errors.AccountClosed(f"the {side.replace('_', ' ')} is closed", param=side)


def _validate_spec(spec: TransferSpec) -> None:
    _check_amount(spec.amount)
    _currency(spec.currency)
    if spec.source_id == spec.destination_id:
        raise errors.SameAccount("source and destination must be different accounts")


def _by_client_reference(holder: str, livemode: bool, reference: str) -> Transfer | None:
    return Transfer.objects.filter(
        holder=holder, livemode=livemode, client_reference=reference
    ).first()


def _same_transfer_or_raise(existing: Transfer, spec: TransferSpec) -> Transfer:
    asked = {
        "source_account": spec.source_id,
        "destination_account": spec.destination_id,
        "amount": spec.amount,
        "currency": spec.currency,
        "settlement": spec.settlement,
        "description": spec.description,
        "metadata": spec.metadata,
        "hold_expires_at": spec.hold_expires_at,
    }
    found = {
        "source_account": existing.source_id,
        "destination_account": existing.destination_id,
        "amount": existing.amount,
        "currency": existing.currency_id,
        "settlement": existing.settlement,
        "description": existing.description,
        "metadata": existing.metadata,
        "hold_expires_at": existing.hold_expires_at,
    }
    different = [name for name in asked if asked[name] != found[name]]
    if different:
        raise errors.ClientReferenceReused(
            f"client_reference was used for transfer {existing.id} with a different "
            f"{', '.join(different)}"
        )
    return existing


# Settling, voiding, failing, reversing ------------------------------------------------


def transfer_settle(
    *, transfer_id: str, amount: int | None = None, holder: str | None = None
) -> Transfer:
    """Post a pending transfer, all of it or a smaller `amount` (a partial capture);
    the rest of the hold is released. A transfer that cannot settle (its hold
    expired, a test asked it to fail) is failed instead, and returned as such."""
    with transaction.atomic():
        transfer = _lock_transfers([transfer_id], holder)[transfer_id]
        if transfer.status != TransferStatus.PENDING:
            raise errors.TransferNotPending(f"the transfer is {transfer.status}")
        settle_amount = transfer.amount if amount is None else amount
        _check_amount(settle_amount)
        if settle_amount > transfer.amount:
            raise errors.AmountExceedsHold(
                f"cannot settle {settle_amount}: only {transfer.amount} was held"
            )
        accounts = _lock_accounts({transfer.source_id, transfer.destination_id})
        reason = _failure_reason(transfer, accounts, timezone.now())
        if reason in (ACCOUNT_FROZEN, ACCOUNT_CLOSED):
            # Settling by hand against a frozen or closed account is refused, so the
            # caller may unfreeze and retry; only the worker fails such transfers.
            _check_open(accounts[transfer.source_id], "source_account")
            _check_open(accounts[transfer.destination_id], "destination_account")
        if reason:
            _apply(accounts, releases=[transfer], failures=[(transfer, reason)])
        else:
            _apply(accounts, settlements=[(transfer, settle_amount)])
        return transfer


def transfer_void(*, transfer_id: str, holder: str | None = None) -> Transfer:
    """Release a pending transfer's hold; nothing is posted."""
    with transaction.atomic():
        transfer = _lock_transfers([transfer_id], holder)[transfer_id]
        if transfer.status != TransferStatus.PENDING:
            raise errors.TransferNotPending(f"the transfer is {transfer.status}")
        accounts = _lock_accounts([transfer.source_id])
        _apply(accounts, releases=[transfer], voids=[transfer])
        return transfer


def transfer_mark_to_fail(*, transfer_id: str, reason: str, holder: str | None = None) -> Transfer:
    """Make a pending transfer fail when it comes to settle (test mode's helper)."""
    with transaction.atomic():
        transfer = _lock_transfers([transfer_id], holder)[transfer_id]
        if transfer.status != TransferStatus.PENDING:
            raise errors.TransferNotPending(f"the transfer is {transfer.status}")
        transfer.fail_at_settlement = reason
        transfer.save(update_fields=["fail_at_settlement", "updated_at"])
        return transfer


@dataclass(frozen=True)
class Reversal:
    original: Transfer  # now `reversed`
    reversal: Transfer  # the new, opposite, settled transfer


def transfer_reverse(
    *, transfer_id: str, holder: str | None = None, description: str = ""
) -> Reversal:
    """Undo a settled transfer with a new, opposite posting; entries are never edited."""
    with transaction.atomic():
        original = _lock_transfers([transfer_id], holder)[transfer_id]
        if original.status != TransferStatus.SETTLED or original.settled_amount is None:
            raise errors.TransferNotSettled(
                f"only a settled transfer can be reversed; this one is {original.status}"
            )
        accounts = _lock_accounts({original.source_id, original.destination_id})
        payer, payee = accounts[original.destination_id], accounts[original.source_id]
        _check_open(payer, "destination_account")
        _check_open(payee, "source_account")
        amount = original.settled_amount
        if payer.kind != AccountKind.SYSTEM and payer.available < amount:
            raise errors.InsufficientFunds(
                "the destination account no longer holds enough to give the money back"
            )
        reversal = Transfer(
            holder=original.holder,
            livemode=original.livemode,
            currency_id=original.currency_id,
            source_id=original.destination_id,
            destination_id=original.source_id,
            amount=amount,
            settlement=Settlement.MANUAL,
            description=description or f"Reversal of {original.id}",
            reversal_of=original,
        )
        reversal.save(force_insert=True)
        _apply(accounts, postings=[(reversal, amount)], reversed_=[original])
        return Reversal(original=original, reversal=reversal)


# The settlement worker's batch operations --------------------------------------------


@dataclass(frozen=True)
class SettlementReport:
    settled: list[Transfer]
    failed: list[Transfer]


def transfer_settle_due(*, limit: int = 500) -> SettlementReport:
    """Settle up to `limit` pending `auto` transfers, oldest first, in one transaction.

    Rows another worker has locked are skipped, so several workers share the queue.
    Each destination is credited by one update however many transfers it receives.
    Transfers that cannot settle (an account frozen or closed, the hold expired, a
    test asked for failure) are failed and their holds released.
    """
    with transaction.atomic():
        transfers = list(
            Transfer.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(status=TransferStatus.PENDING, settlement=Settlement.AUTO)
            .order_by("created_at")[:limit]
        )
        if not transfers:
            return SettlementReport(settled=[], failed=[])
        accounts = _lock_accounts(
            {t.source_id for t in transfers} | {t.destination_id for t in transfers}
        )
        now = timezone.now()
        settle: list[tuple[Transfer, int]] = []
        failures: list[tuple[Transfer, str]] = []
        for transfer in transfers:
            reason = _failure_reason(transfer, accounts, now)
            if reason:
                failures.append((transfer, reason))
            else:
                settle.append((transfer, transfer.amount))
        _apply(
            accounts,
            settlements=settle,
            releases=[transfer for transfer, _ in failures],
            failures=failures,
        )
        return SettlementReport(
            settled=[transfer for transfer, _ in settle],
            failed=[transfer for transfer, _ in failures],
        )


def transfer_expire_due(*, limit: int = 500, now: dt.datetime | None = None) -> list[Transfer]:
    """Void pending transfers whose hold has expired, releasing their holds."""
    now = now or timezone.now()
    with transaction.atomic():
        transfers = list(
            Transfer.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(status=TransferStatus.PENDING, hold_expires_at__lte=now)
            .order_by("id")[:limit]
        )
        if not transfers:
            return []
        accounts = _lock_accounts({t.source_id for t in transfers})
        _apply(accounts, releases=transfers, voids=transfers, reason=HOLD_EXPIRED)
        return transfers


def _failure_reason(transfer: Transfer, accounts: dict[str, Account], now: dt.datetime) -> str:
    if transfer.fail_at_settlement:
        return transfer.fail_at_settlement
    if transfer.hold_expires_at is not None and transfer.hold_expires_at <= now:
        return HOLD_EXPIRED
    for account_id in (transfer.source_id, transfer.destination_id):
        status = accounts[account_id].status
        if status == AccountStatus.FROZEN:
            return ACCOUNT_FROZEN
        if status == AccountStatus.CLOSED:
            return ACCOUNT_CLOSED
    return ""


# Writing: the one function that changes balances --------------------------------------


def _apply(
    accounts: dict[str, Account],
    *,
    settlements: Sequence[tuple[Transfer, int]] = (),
    postings: Sequence[tuple[Transfer, int]] = (),
    releases: Iterable[Transfer] = (),
    voids: Iterable[Transfer] = (),
    failures: Iterable[tuple[Transfer, str]] = (),
    reversed_: Iterable[Transfer] = (),
    reason: str = "",
) -> list[Entry]:
    """Release holds, post entries and move transfers to their new state, on accounts
    already locked by the caller. `settlements` post pending transfers and release
    their holds; `postings` post transfers that never held anything (reversals).
    Raises (and so rolls back) if any customer account would end below its limit."""
    now = timezone.now()
    touched: set[str] = set()
    entries: list[Entry] = []
    changed: list[Transfer] = []

    for transfer in releases:
        accounts[transfer.source_id].held -= transfer.amount
        touched.add(transfer.source_id)
    for transfer, _ in settlements:
        accounts[transfer.source_id].held -= transfer.amount
        touched.add(transfer.source_id)
    for transfer, amount in [*settlements, *postings]:
        for account_id, signed in (
            (transfer.source_id, -amount),
            (transfer.destination_id, amount),
        ):
            account = accounts[account_id]
            account.posted += signed
            account.entry_count += 1
            touched.add(account_id)
            entries.append(
                Entry(
                    account_id=account_id,
                    transfer=transfer,
                    amount=signed,
                    balance_after=account.posted,
                    seq=account.entry_count,
                    created_at=now,
                )
            )
        transfer.status = TransferStatus.SETTLED
        transfer.settled_amount = amount
        changed.append(transfer)
    for transfer in voids:
        transfer.status = TransferStatus.VOIDED
        transfer.failure_reason = reason
        changed.append(transfer)
    for transfer, why in failures:
        transfer.status = TransferStatus.FAILED
        transfer.failure_reason = why
        changed.append(transfer)
    for transfer in reversed_:
        transfer.status = TransferStatus.REVERSED
        changed.append(transfer)

    for account_id in sorted(touched):
        account = accounts[account_id]
        if account.held < 0:
            raise AssertionError(f"hold of {account_id} would go negative")  # a bug, not input
        if account.kind != AccountKind.SYSTEM and account.available < 0:
            raise errors.InsufficientFunds(f"account {account_id} would go below its limit")
        if abs(account.posted) > MAX_AMOUNT:
            raise errors.BalanceOverflow(f"the balance of {account_id} would overflow")
    try:
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE ledger_account SET posted = %s, held = %s, entry_count = %s WHERE id = %s",
                [
                    (accounts[a].posted, accounts[a].held, accounts[a].entry_count, a)
                    for a in sorted(touched)
                ],
            )
            if entries:
                Entry.objects.bulk_create(entries)
            cursor.executemany(
                "UPDATE ledger_transfer SET status = %s, settled_amount = %s, "
                "failure_reason = %s, version = version + 1, updated_at = %s WHERE id = %s",
                [(t.status, t.settled_amount, t.failure_reason, now, t.id) for t in changed],
            )
    except DataError as exc:  # bigint overflow caught by PostgreSQL itself
        raise errors.BalanceOverflow("a balance would overflow") from exc
    for transfer in changed:
        transfer.version += 1
        transfer.updated_at = now
    return entries


# Locking and reading helpers ---------------------------------------------------------


def _lock_transfers(ids: Iterable[str], holder: str | None) -> dict[str, Transfer]:
    query = (
        Transfer.objects.select_for_update(no_key=True)
        .filter(id__in=sorted(set(ids)))
        .order_by("id")
    )
    if holder is not None:
        query = query.filter(holder=holder)
    found = {transfer.id: transfer for transfer in query}
    for transfer_id in ids:
        if transfer_id not in found:
            raise errors.TransferNotFound("no such transfer", param="id")
    return found


def _lock_accounts(ids: Iterable[str]) -> dict[str, Account]:
    """Lock accounts in id order: the order every transaction uses, so none deadlock."""
    ids = sorted(set(ids))
    query = Account.objects.select_for_update(no_key=True).filter(id__in=ids).order_by("id")
    return {account.id: account for account in query}


def _lock_account(account_id: str) -> Account:
    account = _lock_accounts([account_id]).get(account_id)
    if account is None:
        raise errors.AccountNotFound("no such account", param="id")
    return account


def _read_accounts(ids: Iterable[str]) -> dict[str, Account]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {account.id: account for account in Account.objects.filter(id__in=ids)}


def _check_amount(amount: object) -> None:
    # bool is an int in Python; a JSON `true` must not move one cent.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise errors.InvalidAmount("amount must be an integer number of minor units")
    if amount <= 0:
        raise errors.InvalidAmount("amount must be positive")
    if amount > MAX_AMOUNT:
        raise errors.InvalidAmount(f"amount must be at most {MAX_AMOUNT}")


def _currency(code: object) -> str:
    if not isinstance(code, str) or code not in currency_exponents():
        raise errors.UnknownCurrency(f"{code!r} is not an ISO 4217 currency we support")
    return code
