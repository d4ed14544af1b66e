"""The webhook section: how fast the delivery worker sends, against the same POSTs sent
by a plain loop, and how long a settled transfer takes to reach its receiver.

Both sides run in this one process with the same 8 concurrent senders, to the same
receiver on loopback, so the ratio is what the worker's bookkeeping costs (claiming,
signing, the attempt log) on top of the HTTP itself.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db import connections

from bench.context import Context
from bench.report import Figure, Goal, SectionResult, progress

CONCURRENCY = 8


@dataclass(frozen=True)
class Sizes:
    deliveries: int
    latency_samples: int


class _Receiver:
    """Answers 200 at once and notes when each webhook-id arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.setdefault(self.headers.get("webhook-id", ""), time.monotonic())
                receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def run(context: Context) -> SectionResult:
    sizes = Sizes(
        deliveries=300 if context.quick else 2000, latency_samples=40 if context.quick else 200
    )
    result = SectionResult("webhooks", sizes=asdict(sizes))
    receiver = _Receiver()
    try:
        organization, endpoint, accounts = _world(receiver.url)
        plain = _plain_posts(receiver.url, sizes.deliveries)
        progress(f"webhooks: plain POSTs {plain:,.0f}/s")
        delivered = _deliveries(organization, endpoint, sizes.deliveries)
        progress(f"webhooks: deliveries {delivered:,.0f}/s")
        p50, p99 = _latency(organization, accounts, receiver, sizes.latency_samples)
        progress(f"webhooks: settle-to-received p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    finally:
        receiver.stop()
        connections.close_all()
    result.raw.update(
        plain_posts_per_s=plain, deliveries_per_s=delivered, latency_p50_ms=p50, latency_p99_ms=p99
    )
    result.figures += [
        Figure(
            "webhook_vs_plain_post",
            delivered / plain,
            Goal(">=", 0.5),
            f"{delivered:,.0f} vs {plain:,.0f}/s, {CONCURRENCY} senders each",
        ),
        Figure("webhook_latency_p50_ms", p50, Goal("<", 250), "settle committed -> received"),
        Figure("webhook_latency_p99_ms", p99, Goal("<", 1000), "settle committed -> received"),
    ]
    return result


def _world(url: str) -> tuple[Any, Any, tuple[str, str]]:
    from oauth import services as identity
    from payments import services as payments
    from payments import webhooks

    owner = identity.user_create(
        username=f"webhooks-{time.time_ns()}",
        email=f"webhooks-{time.time_ns()}@bench.test",
        password="a-long-bench-password-42",
    )
    organization = identity.organization_create(name="Webhook bench", owner=owner)
    source, destination = payments.sandbox_open(holder=organization.id, currencies=("USD", "USD"))
    endpoint = webhooks.webhook_endpoint_create(
        organization_id=organization.id, livemode=False, url=url, enabled_events=["*"]
    )
    return organization, endpoint, (source.id, destination.id)


def _plain_posts(url: str, count: int) -> float:
    """The same-sized signed bodies, sent by a bare loop through the same sender."""
    from payments.webhook_sender import webhook_send

    body = b'{"id":"evt_x","type":"transfer.settled","data":{"object":{}}}' * 8
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(
            pool.map(
                lambda _: webhook_send(url=url, body=body, headers={}, allow_loopback=True),
                range(count),
            )
        )
    return count / (time.monotonic() - started)


def _deliveries(organization: Any, endpoint: Any, count: int) -> float:
    from payments.delivery import deliveries_run
    from payments.events import NewEvent, events_record

    events_record(
        [
            NewEvent(
                organization_id=organization.id,
                livemode=False,
                type="transfer.settled",
                object={"object": "transfer", "id": f"tr_bench{i}"},
            )
            for i in range(count)
        ]
    )
    started = time.monotonic()
    sent = 0
    while sent < count and time.monotonic() - started < 300:
        sent += deliveries_run(limit=100, concurrency=CONCURRENCY)
    return sent / (time.monotonic() - started)


def _latency(
    organization: Any, accounts: tuple[str, str], receiver: _Receiver, samples: int
) -> tuple[float, float]:
    """A worker loop sends while transfers settle one by one; each settled event's time
    from commit to arrival."""
    from ledger import services as ledger
    from ledger.models import Settlement
    from payments import services as payments
    from payments.delivery import deliveries_run
    from payments.models import Event

    stop = threading.Event()

    def worker() -> None:
        try:
            while not stop.is_set():
                if not deliveries_run(limit=100, concurrency=CONCURRENCY):
                    time.sleep(0.01)
        finally:
            connections.close_all()

    committed: dict[str, float] = {}
    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for _ in range(samples):
            transfer = payments.transfer_create(
                organization_id=organization.id,
                livemode=False,
                spec=ledger.TransferSpec(
                    source_id=accounts[0],
                    destination_id=accounts[1],
                    amount=1,
                    currency="USD",
                    settlement=Settlement.MANUAL,
                ),
            )
            payments.transfer_settle(
                organization_id=organization.id, transfer_id=transfer.id, amount=None
            )
            committed[transfer.id] = time.monotonic()
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        settled = {
            e.id: e.data["object"]["id"]
            for e in Event.objects.filter(organization=organization, type="transfer.settled")
            if e.data["object"]["id"] in committed
        }
        while not set(settled) <= set(receiver.arrived) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    waits = sorted(
        (receiver.arrived[event_id] - committed[transfer_id]) * 1000
        for event_id, transfer_id in settled.items()
        if event_id in receiver.arrived
    )
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    return statistics.median(waits), p99
