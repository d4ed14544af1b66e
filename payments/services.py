"""Writes of the payments layer: it drives the ledger on behalf of the API and workers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import transaction

from ledger import errors, selectors
from ledger import services as ledger
from ledger.models import Account, Settlement, Transfer
from payments import events
from payments.nudge import nudge

SETTLEMENT_BATCH = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettlementRun:
    settled: int
    failed: int
    batches: int


def transfers_settle_due(
    *, batch_size: int = SETTLEMENT_BATCH, budget_seconds: float = 20.0
) -> SettlementRun:
    """Settle pending `auto` transfers in batches until none is left or the time budget
    is spent (the next run picks up the rest)."""
    settled = failed = batches = 0
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        with transaction.atomic():
            report = ledger.transfer_settle_due(limit=batch_size)
            events.transfer_events([*report.settled, *report.failed])
        if not report.settled and not report.failed:
            break
        settled += len(report.settled)
        failed += len(report.failed)
        batches += 1
    return SettlementRun(settled=settled, failed=failed, batches=batches)


def transfers_expire_holds(*, batch_size: int = SETTLEMENT_BATCH) -> int:
    """Void every pending transfer whose hold has expired."""
    expired = 0
    while True:
        with transaction.atomic():
            voided = ledger.transfer_expire_due(limit=batch_size)
            events.transfer_events(voided)
        if not voided:
            return expired
        expired += len(voided)


TEST_FUNDING = "test funding"
SANDBOX_OPENING_BALANCE = 1_000_000  # in minor units: 10,000.00 USD


def test_account_fund(*, holder: str, account_id: str, amount: int) -> Transfer:
    """Credit test money to a test-mode account, from the platform's test funding source
    for that organization and currency. One source per organization: a source can give
    at most 2^63 - 1 minor units, and a tenant that used up its own must not stop
    everyone else's sandbox."""
    account = selectors.account_get(account_id=account_id, holder=holder)
    if account.livemode:
        raise errors.AccountNotFound("test money goes only to test-mode accounts", param="id")
    funding = ledger.system_account(
        purpose=f"{TEST_FUNDING} for {holder}", currency=account.currency_id, livemode=False
    )
    return ledger.transfer_post(
        holder=funding.holder,
        livemode=False,
        source_id=funding.id,
        destination_id=account.id,
        amount=amount,
        currency=account.currency_id,
        description="Test money",
    )


TEST_FAILURE_REASON = "test_helper"


def test_transfer_fail(*, organization_id: str, transfer_id: str) -> Transfer:
    """Make a pending test-mode transfer fail when it comes to settle: what the API's test
    helper and the portal's sandbox offer, so a developer can watch `transfer.failed`."""
    if not Transfer.objects.filter(id=transfer_id, holder=organization_id, livemode=False).exists():
        raise errors.TransferNotFound("no such test-mode transfer", param="id")
    return ledger.transfer_mark_to_fail(
        transfer_id=transfer_id, reason=TEST_FAILURE_REASON, holder=organization_id
    )


def sandbox_open(*, holder: str, currencies: tuple[str, ...] = ("USD", "EUR")) -> list[Account]:
    """A new organization's test-mode accounts, one per currency, funded at once."""
    accounts = []
    with transaction.atomic():
        for currency in currencies:
            account = ledger.account_open(
                holder=holder, livemode=False, currency=currency, name=f"Sandbox {currency}"
            )
            # The same round sum in every currency's major unit: 10,000 yen, 10,000 dinars.
            major = SANDBOX_OPENING_BALANCE // 100
            test_account_fund(
                holder=holder,
                account_id=account.id,
                amount=major * 10 ** selectors.currency_exponents()[currency],
            )
            account.refresh_from_db()
            accounts.append(account)
    return accounts


def settlement_nudge() -> None:
    nudge("payments.tasks.settle_transfers")


# Transfers, with their events ------------------------------------------------------------
#
# Every change of a transfer goes through here, whoever asks (the API, the workers, the
# admin), so each one records its event in the same transaction.


def transfer_create(*, organization_id: str, livemode: bool, spec: ledger.TransferSpec) -> Transfer:
    with transaction.atomic():
        created = ledger.transfer_create(
            holder=organization_id,
            livemode=livemode,
            source_id=spec.source_id,
            destination_id=spec.destination_id,
            destination_holder=organization_id,
            amount=spec.amount,
            currency=spec.currency,
            settlement=spec.settlement,
            description=spec.description,
            metadata=spec.metadata,
        )
        events.transfer_events([created.transfer], kind="created", holders_checked=True)
    if created.transfer.settlement == Settlement.AUTO:
        transaction.on_commit(settlement_nudge)
    return created.transfer


def transfer_batch_create(
    *, organization_id: str, livemode: bool, specs: list[ledger.TransferSpec]
) -> list[Transfer]:
    with transaction.atomic():
        transfers = ledger.transfer_batch_create(
            holder=organization_id, livemode=livemode, specs=specs
        )
        events.transfer_events(transfers, kind="created", holders_checked=True)
    if any(t.settlement == Settlement.AUTO for t in transfers):
        transaction.on_commit(settlement_nudge)
    return transfers


def transfer_settle(*, organization_id: str, transfer_id: str, amount: int | None) -> Transfer:
    with transaction.atomic():
        transfer = ledger.transfer_settle(
            transfer_id=transfer_id, amount=amount, holder=organization_id
        )
        # settled, or failed if it could not settle
        events.transfer_events([transfer], holders_checked=True)
    return transfer


def transfer_void(*, organization_id: str, transfer_id: str) -> Transfer:
    with transaction.atomic():
        transfer = ledger.transfer_void(transfer_id=transfer_id, holder=organization_id)
        events.transfer_events([transfer], holders_checked=True)
    return transfer


def transfer_reverse(
    *, organization_id: str | None, transfer_id: str, description: str = ""
) -> ledger.Reversal:
    """`organization_id` None: the platform's staff acting on any organization's books."""
    with transaction.atomic():
        reversal = ledger.transfer_reverse(
            transfer_id=transfer_id, holder=organization_id, description=description
        )
        events.transfer_events([reversal.original])
    return reversal
