"""The webhook section: the product's own delivery path — a Celery worker process (one
process executing tasks, as issue 6 asks) and beat, woken by the nudge a commit sends —
against the same number of POSTs sent by a plain loop, and how long a settled transfer
takes to reach its receiver.

The receiver is a process of its own (bench/receiver.py) and both sides are timed there,
from the first arrival to the last, so that neither side shares an interpreter with it
and both are measured by the same clock.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from django.db import connections, transaction

from bench.context import Context
from bench.ledger_world import settle_all
from bench.processes import Child
from bench.receiver import Receiver, receiver
from bench.report import Figure, SectionResult, progress
from bench.worker import celery

_TASK_DONE = re.compile(
    r"Task payments\.tasks\.deliver_webhooks\[[^\]]*\] succeeded in ([\d.]+)s: (\d+)"
)
# The plain loop's senders; the worker's are its own (payments.delivery.deliveries_run's
# default, 8).
CONCURRENCY = 8
# The product's worker, told that the receiver on loopback is allowed (development's
# default; production refuses loopback targets).
WORKER_ENV = {"DJANGO_SETTINGS_MODULE": "config.settings", "WEBHOOKS_ALLOW_LOOPBACK": "true"}


@dataclass(frozen=True)
class Sizes:
    deliveries: int = 2_000
    latency_samples: int = 200
    # How long to wait for the last delivery or the last settled event to arrive.
    patience_seconds: int = 120


FULL = Sizes()
QUICK = replace(FULL, deliveries=200, latency_samples=40, patience_seconds=60)


def run(context: Context) -> SectionResult:
    sizes = QUICK if context.quick else FULL
    result = SectionResult("webhooks", sizes=asdict(sizes))
    progress(f"webhooks: sizes {asdict(sizes)}")
    # The worker and beat would otherwise spend the section settling what the API
    # section left pending (beat's settlement sweep runs every 2 s).
    settled, seconds = settle_all()
    progress(f"webhooks: settled the {settled:,} transfers left pending ({seconds:.1f}s)")
    try:
        with receiver() as hooks:
            progress(f"webhooks: receiver process on port {hooks.port}")
            world = _World.open(hooks.url)
            # Before the worker starts: its first seconds (beat's first round of every
            # task) would fall on this side only.
            plain = _plain_posts(hooks, world.body, sizes)
            progress(f"webhooks:   plain POSTs: {plain:,.0f}/s")
            progress("webhooks: starting a Celery worker (--concurrency 1) and beat")
            with celery(env=WORKER_ENV) as workers:
                delivered = _deliveries(world, hooks, workers.worker, sizes, result)
                progress(f"webhooks:   deliveries by the worker: {delivered:,.0f}/s")
                p50, p99 = _latency(world, hooks, sizes, delivered / 2, result)
                progress(f"webhooks:   settle to received: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    finally:
        connections.close_all()
    result.raw |= {
        "plain_posts_per_s": plain,
        "deliveries_per_s": delivered,
        "event_body_bytes": float(len(world.body)),
    }
    result.figures += [
        Figure(
            "webhook_vs_plain_post",
            delivered / plain,
            f"{delivered:,.0f} vs {plain:,.0f}/s; {sizes.deliveries:,} each, one endpoint, "
            f"longest pause between deliveries {result.raw['deliveries_longest_gap_ms']:,.0f} ms"
            + _missing(result.raw["deliveries_missing"], sizes),
        ),
        Figure("webhook_latency_p50_ms", p50, _latency_detail(sizes, result)),
        Figure("webhook_latency_p99_ms", p99, _latency_detail(sizes, result)),
    ]
    return result


@dataclass(frozen=True)
class _World:
    organization_id: str
    accounts: tuple[str, str]
    # A real transfer.settled event's body: the size every send of the section carries.
    body: bytes
    data: dict[str, Any]

    @classmethod
    def open(cls, url: str) -> _World:
        """An organization with two funded test-mode accounts and one endpoint, on the
        receiver, subscribed to every event."""
        from ledger import services as ledger
        from ledger.models import Settlement
        from oauth import services as identity
        from payments import services as payments
        from payments import webhooks
        from payments.models import Event
        from payments.representations import event_json

        owner = identity.user_create(
            username=f"webhooks-{time.time_ns()}",
            email=f"webhooks-{time.time_ns()}@bench.test",
            password="a-long-bench-password-42",
        )
        organization = identity.organization_create(name="Webhook bench", owner=owner)
        source, destination = payments.sandbox_open(
            holder=organization.id, currencies=("USD", "USD")
        )
        transfer = payments.transfer_create(
            organization_id=organization.id,
            livemode=False,
            spec=ledger.TransferSpec(source.id, destination.id, 1, "USD", Settlement.MANUAL),
        )
        payments.transfer_settle(
            organization_id=organization.id, transfer_id=transfer.id, amount=None
        )
        event = Event.objects.filter(organization=organization, type="transfer.settled").get()
        webhooks.webhook_endpoint_create(
            organization_id=organization.id, livemode=False, url=url, enabled_events=["*"]
        )
        body = json.dumps(event_json(event), separators=(",", ":")).encode()
        return cls(organization.id, (source.id, destination.id), body, event.data)


def _plain_posts(hooks: Receiver, body: bytes, sizes: Sizes) -> float:
    """`sizes.deliveries` POSTs of a real event's body with Standard Webhooks headers
    of the real size, from a bare loop of CONCURRENCY threads through the product's
    SSRF-safe sender (as the worker sends): per second, at the receiver."""
    from payments.webhook_sender import webhook_send

    tag = f"plain{time.time_ns()}_"
    progress(f"webhooks: {sizes.deliveries:,} plain POSTs, {CONCURRENCY} at a time")

    def send(number: int) -> int | None:
        headers = {
            "webhook-id": f"{tag}{number}",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1," + "A" * 44,
        }
        return webhook_send(url=hooks.url, body=body, headers=headers, allow_loopback=True).status

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        # Not counted: the threads start, and the receiver's, before the clock does
        # (the worker's side is warm too: its process is up before the events exist).
        list(pool.map(send, range(-4 * CONCURRENCY, 0)))
        statuses = list(pool.map(send, range(sizes.deliveries)))
    failed = sum(status != 200 for status in statuses)
    if failed:
        progress(f"webhooks:   {failed} plain POSTs failed")
    times = [
        at for key, at in hooks.arrivals() if key.startswith(tag) and not key.startswith(f"{tag}-")
    ]
    return _rate(times)


def _deliveries(
    world: _World, hooks: Receiver, worker: Child, sizes: Sizes, result: SectionResult
) -> float:
    """`sizes.deliveries` events recorded in one transaction, each owing the endpoint a
    delivery; the commit nudges the worker. Deliveries per second at the receiver, from
    the first to the last arrival; from the worker's log, how many deliver_webhooks
    tasks sent them."""
    from payments.events import NewEvent, events_record

    progress(
        f"webhooks: {sizes.deliveries:,} events recorded in one commit; "
        "the worker delivers them (nudge and beat)"
    )
    logged = len(worker.output())
    with transaction.atomic():
        events = events_record(
            [
                NewEvent(
                    organization_id=world.organization_id,
                    livemode=False,
                    type="transfer.settled",
                    object=world.data["object"],
                )
                for _ in range(sizes.deliveries)
            ]
        )
    committed = time.monotonic()
    owed = {event.id for event in events}
    arrived = _await(hooks, owed, committed + sizes.patience_seconds)
    missing = len(owed) - len(arrived)
    if missing:
        # The rate is still what the worker did while it delivered; the detail says
        # how many were left.
        progress(
            f"webhooks:   {missing} had not arrived {sizes.patience_seconds}s after the commit"
        )
    times = sorted(arrived.values())
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    tasks = _tasks_sent(worker, logged, len(owed))
    most = max((sent for _, sent in tasks), default=0)
    busy = sum(seconds for seconds, _ in tasks)
    progress(
        f"webhooks:   {len(tasks)} deliver_webhooks tasks sent them, at most {most} each, "
        f"busy {busy:.1f}s of the {times[-1] - committed:.1f}s"
    )
    result.raw |= {
        "deliveries_tasks": float(len(tasks)),
        "deliveries_most_per_task": float(most),
        "deliveries_task_seconds": busy,
        "deliveries_first_arrival_ms": (times[0] - committed) * 1000,
        "deliveries_all_arrived_s": times[-1] - committed,
        "deliveries_longest_gap_ms": max(gaps, default=0.0) * 1000,
        "deliveries_missing": float(missing),
    }
    return _rate(times)


def _latency(
    world: _World, hooks: Receiver, sizes: Sizes, deliveries_per_s: float, result: SectionResult
) -> tuple[float, float]:
    """Transfers created and settled one at a time on a fixed schedule, each making two
    deliveries (transfer.created, transfer.settled), at `deliveries_per_s` (half the rate
    the worker delivered at: latency at a load it sustains, as the API section measures
    its own at half its peak); each settled event's time from the settlement's commit
    (when transfer_settle returned, the nudge sent) to its arrival."""
    from ledger import services as ledger
    from ledger.models import Settlement
    from payments import services as payments
    from payments.models import Event

    interval = 2 / deliveries_per_s
    result.raw["latency_transfers_per_s"] = 1 / interval
    progress(
        f"webhooks: latency, {sizes.latency_samples} transfers settled one by one, one every "
        f"{interval * 1000:,.0f} ms ({deliveries_per_s:,.1f} deliveries/s: half the rate above)"
    )
    source, destination = world.accounts
    committed: dict[str, float] = {}
    started = time.monotonic()
    for number in range(sizes.latency_samples):
        # Due on the schedule whatever the last one cost (none waits if it is late).
        time.sleep(max(0.0, started + number * interval - time.monotonic()))
        transfer = payments.transfer_create(
            organization_id=world.organization_id,
            livemode=False,
            spec=ledger.TransferSpec(source, destination, 1, "USD", Settlement.MANUAL),
        )
        payments.transfer_settle(
            organization_id=world.organization_id, transfer_id=transfer.id, amount=None
        )
        committed[transfer.id] = time.monotonic()
    settled = dict(
        Event.objects.filter(
            organization_id=world.organization_id,
            type="transfer.settled",
            data__object__id__in=list(committed),
        ).values_list("id", "data__object__id")
    )
    arrived = _await(hooks, set(settled), time.monotonic() + sizes.patience_seconds)
    # One that never came counts as infinitely late: a percentile it reaches is unknown.
    waits = sorted(
        (arrived[event] - committed[transfer]) * 1000 if event in arrived else math.inf
        for event, transfer in settled.items()
    )
    p50, p99 = _percentile(waits, 50), _percentile(waits, 99)
    result.raw |= {
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "latency_max_ms": waits[-1],
        "latency_missing": float(len(settled) - len(arrived)),
    }
    return p50, p99


# Helpers -------------------------------------------------------------------------------


def _await(hooks: Receiver, owed: set[str], deadline: float) -> dict[str, float]:
    """Poll the receiver until every id in `owed` has arrived or `deadline` passes: the
    first arrival of each (deliveries are at least once)."""
    while True:
        arrived: dict[str, float] = {}
        for key, at in hooks.arrivals():
            if key in owed:
                arrived.setdefault(key, at)
        if len(arrived) == len(owed) or time.monotonic() > deadline:
            return arrived
        time.sleep(0.25)


def _tasks_sent(worker: Child, logged: int, total: int) -> list[tuple[float, int]]:
    """(seconds, deliveries) of each deliver_webhooks task that sent something, from the
    worker's log after `logged` (`Task payments.tasks.deliver_webhooks[…] succeeded in
    0.52s: 80`); the last task logs just after its last send arrived, so wait for it
    (5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        tasks = [
            (float(seconds), int(sent))
            for seconds, sent in _TASK_DONE.findall(worker.output()[logged:])
            if int(sent) > 0
        ]
        if sum(sent for _, sent in tasks) >= total or time.monotonic() > deadline:
            return tasks
        time.sleep(0.1)


def _rate(times: list[float]) -> float:
    """Arrivals per second between the first and the last."""
    if len(times) < 2:
        raise RuntimeError(f"{len(times)} arrival(s): no rate")
    return (len(times) - 1) / (max(times) - min(times))


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest rank, as the API section's."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _missing(count: float, sizes: Sizes) -> str:
    return f"; {count:,.0f} not delivered within {sizes.patience_seconds}s" if count else ""


def _latency_detail(sizes: Sizes, result: SectionResult) -> str:
    missing = int(result.raw["latency_missing"])
    return (
        f"settle committed -> received, {sizes.latency_samples} transfers, one every "
        f"{1000 / result.raw['latency_transfers_per_s']:,.0f} ms (half the delivery rate); "
        f"max {result.raw['latency_max_ms']:,.0f} ms"
        + (f"; {missing} never arrived" if missing else "")
    )
