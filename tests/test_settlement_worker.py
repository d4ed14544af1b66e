"""A real Celery worker process settles `auto` transfers through the real broker
(Redis on CI, the filesystem broker on a laptop)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from ledger import services as ledger
from ledger.models import Transfer, TransferStatus
from payments.tasks import settle_transfers
from tests.factories import HOLDER, open_account
from tests.live import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """A worker on a queue of its own, so no other test's messages reach it."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with celery_worker("--queues", queue):
        yield queue


def wait_until_settled(ids: list[str], timeout: float = 45) -> dict[str, Transfer]:
    deadline = time.monotonic() + timeout
    while True:
        transfers = {t.id: t for t in Transfer.objects.filter(id__in=ids)}
        if all(t.status != TransferStatus.PENDING for t in transfers.values()):
            return transfers
        if time.monotonic() > deadline:
            pytest.fail(f"still pending after {timeout}s: {transfers}")
        time.sleep(0.2)


def test_the_worker_settles_auto_transfers_and_fails_what_cannot_settle(
    worker_queue: str,
) -> None:
    alice = open_account("USD", balance=10_000)
    shop = open_account("USD", holder="shop")

    def pay(amount: int) -> str:
        return ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=amount,
            currency="USD",
        ).transfer.id

    good, doomed = pay(1_000), pay(2_000)
    ledger.transfer_mark_to_fail(transfer_id=doomed, reason="test_helper")

    settle_transfers.apply_async(queue=worker_queue)
    transfers = wait_until_settled([good, doomed])

    assert transfers[good].status == TransferStatus.SETTLED
    assert (transfers[doomed].status, transfers[doomed].failure_reason) == (
        TransferStatus.FAILED,
        "test_helper",
    )
    alice.refresh_from_db()
    shop.refresh_from_db()
    assert (alice.posted, alice.held) == (9_000, 0)
    assert shop.posted == 1_000
