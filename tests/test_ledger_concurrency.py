"""Real threads against real PostgreSQL: row locks, not luck, keep the books right."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from ledger import errors, selectors
from ledger import services as ledger
from ledger.models import Account, Settlement, Transfer, TransferStatus
from ledger.verify import ledger_verify
from tests.factories import HOLDER, open_account, system_account

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
T = TypeVar("T")

# Expected refusals in a race; anything else (a deadlock, a serialization failure)
# surfacing to a caller fails the test.
REFUSALS = (
    errors.InsufficientFunds,
    errors.TransferNotPending,
    errors.TransferNotSettled,
    errors.AccountFrozen,
)


def in_threads(count: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run work(i) in `count` threads released together; each has its own connection."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T | BaseException:
        try:
            barrier.wait()
            return work(index)
        except BaseException as exc:
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_fifty_concurrent_debits_of_the_whole_balance_let_exactly_one_through() -> None:
    alice = open_account("USD", balance=10_000)
    shop = open_account("USD", holder="shop")

    def spend_everything(_: int) -> Transfer:
        return ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=10_000,
            currency="USD",
        ).transfer

    outcomes = in_threads(50, spend_everything)
    kinds = Counter(type(outcome).__name__ for outcome in outcomes)
    assert kinds == {"Transfer": 1, "InsufficientFunds": 49}
    alice.refresh_from_db()
    assert (alice.posted, alice.held, alice.available) == (10_000, 10_000, 0)


def test_twenty_concurrent_calls_with_one_client_reference_make_one_transfer() -> None:
    alice = open_account("USD", balance=10_000)
    shop = open_account("USD", holder="shop")

    def create(_: int) -> ledger.TransferCreated:
        return ledger.transfer_create(
            holder=HOLDER,
            livemode=False,
            source_id=alice.id,
            destination_id=shop.id,
            amount=700,
            currency="USD",
            client_reference="invoice-42",
        )

    outcomes = in_threads(20, create)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    made = [o for o in outcomes if isinstance(o, ledger.TransferCreated)]
    assert len({o.transfer.id for o in made}) == 1
    assert sum(o.created for o in made) == 1
    assert Transfer.objects.filter(client_reference="invoice-42").count() == 1
    alice.refresh_from_db()
    assert alice.held == 700


def test_random_transfers_from_twenty_threads_conserve_money() -> None:
    funding = system_account("USD")
    accounts = [
        open_account("USD", balance=50_000, holder=f"h{i}", funding=funding) for i in range(12)
    ]
    total_before = sum(a.posted for a in Account.objects.all())
    stop = threading.Event()

    def settle_in_background() -> int:
        settled = 0
        try:
            while not stop.is_set():
                settled += len(ledger.transfer_settle_due(limit=200).settled)
        finally:
            connections.close_all()
        return settled

    def trade(seed: int) -> Counter[str]:
        rng = random.Random(seed)
        seen: Counter[str] = Counter()
        for _ in range(500):
            source, destination = rng.sample(accounts, 2)
            amount = rng.randint(1, 9_000)
            try:
                seen[_random_operation(rng, source, destination, amount)] += 1
            except REFUSALS as refusal:
                seen[type(refusal).__name__] += 1
        return seen

    with ThreadPoolExecutor(max_workers=1) as background:
        settling = background.submit(settle_in_background)
        try:
            outcomes = in_threads(20, trade)
        finally:
            stop.set()
            settling.result()
            connections.close_all()

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == [], f"errors surfaced to callers: {failures[:3]}"
    ledger.transfer_settle_due(limit=100_000)
    tally = sum((o for o in outcomes if isinstance(o, Counter)), Counter())
    assert tally["created"] + tally["posted"] > 1_000, tally
    assert ledger_verify() is None
    assert sum(a.posted for a in Account.objects.all()) == total_before
    for account in Account.objects.exclude(id=funding.id):
        assert account.available >= 0
    assert not Transfer.objects.filter(status=TransferStatus.PENDING, settlement="auto").exists()


def _random_operation(
    rng: random.Random, source: Account, destination: Account, amount: int
) -> str:
    common: dict[str, Any] = {
        "holder": source.holder,
        "livemode": False,
        "source_id": source.id,
        "destination_id": destination.id,
        "amount": amount,
        "currency": "USD",
    }
    roll = rng.random()
    if roll < 0.55:
        ledger.transfer_create(**common)
        return "created"
    if roll < 0.70:
        ledger.transfer_post(**common)
        return "posted"
    transfer = ledger.transfer_create(**common, settlement=Settlement.MANUAL).transfer
    if roll < 0.80:
        ledger.transfer_settle(transfer_id=transfer.id, amount=rng.randint(1, amount))
        return "partially settled"
    if roll < 0.90:
        ledger.transfer_void(transfer_id=transfer.id)
        return "voided"
    ledger.transfer_settle(transfer_id=transfer.id)
    ledger.transfer_reverse(transfer_id=transfer.id)
    return "reversed"


def _statements(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries]


def _first_index(statements: list[str], predicate: Callable[[str], bool]) -> int:
    return next(i for i, sql in enumerate(statements) if predicate(sql))


def test_settling_locks_the_transfer_then_the_accounts_in_id_order_before_writing() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    transfer = ledger.transfer_create(
        holder=HOLDER,
        livemode=False,
        source_id=alice.id,
        destination_id=shop.id,
        amount=100,
        currency="USD",
        settlement=Settlement.MANUAL,
    ).transfer
    sql = _statements(lambda: ledger.transfer_settle(transfer_id=transfer.id))
    lock_transfer = _first_index(
        sql, lambda s: 'FROM "ledger_transfer"' in s and s.endswith("FOR NO KEY UPDATE")
    )
    lock_accounts = _first_index(
        sql, lambda s: 'FROM "ledger_account"' in s and s.endswith("FOR NO KEY UPDATE")
    )
    first_write = _first_index(sql, lambda s: s.startswith(("UPDATE", "INSERT")))
    assert lock_transfer < lock_accounts < first_write
    assert 'ORDER BY "ledger_account"."id" ASC FOR NO KEY UPDATE' in sql[lock_accounts]


def test_a_hold_is_one_round_trip_that_locks_only_its_source() -> None:
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    held, probed = threading.Event(), threading.Event()

    def hold_and_wait(_: int) -> int:
        from django.db import transaction

        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            ledger.transfer_create(
                holder=HOLDER,
                livemode=False,
                source_id=alice.id,
                destination_id=shop.id,
                amount=100,
                currency="USD",
            )
            held.set()
            probed.wait(10)
        return len([q for q in captured.captured_queries if q["sql"] != "BEGIN"])

    def probe(account_id: str) -> str:
        from django.db import OperationalError, transaction

        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM ledger_account WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                    [account_id],
                )
        except OperationalError:
            return "locked"
        return "free"

    def work(index: int) -> object:
        if index == 0:
            return hold_and_wait(index)
        held.wait(10)
        try:
            return probe(alice.id), probe(shop.id)
        finally:
            probed.set()

    statements, locks = in_threads(2, work)
    assert statements == 1, "the hold is one statement"
    assert locks == ("locked", "free"), "the source is locked, the destination is not"


def test_a_second_writer_waits_for_the_lock_instead_of_overspending() -> None:
    """Behaviour, not just SQL text: while one transaction holds the source's lock,
    another hold on it blocks until the first commits, then sees its effect."""
    alice = open_account("USD", balance=1_000)
    shop = open_account("USD", holder="shop")
    locked, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first(_: int) -> None:
        from django.db import transaction

        with transaction.atomic():
            ledger.transfer_create(
                holder=HOLDER,
                livemode=False,
                source_id=alice.id,
                destination_id=shop.id,
                amount=800,
                currency="USD",
            )
            locked.set()
            release.wait(5)
            order.append("first commits")

    def second(_: int) -> str:
        locked.wait(5)
        release.set()
        try:
            ledger.transfer_create(
                holder=HOLDER,
                livemode=False,
                source_id=alice.id,
                destination_id=shop.id,
                amount=800,
                currency="USD",
            )
        except errors.InsufficientFunds:
            order.append("second refused")
            return "refused"
        return "overspent"

    def work(index: int) -> str:
        if index == 0:
            first(index)
            return "committed"
        return second(index)

    outcomes = in_threads(2, work)
    assert outcomes[1] == "refused"
    assert order == ["first commits", "second refused"]
    assert selectors.account_balance(account_id=alice.id).held == 800
