"""Webhook delivery under faults, with real processes: Redis (broker and cache) down
while transfers are made, and a Celery worker SIGKILLed in the middle of a send.

Each test runs its own redis-server on a free port so that it can stop it (or leave a
dead worker's messages in it) without touching the machine's shared Redis. gunicorn,
the Celery worker and beat are pointed at it through REDIS_URL; the test process itself
never queues anything (its nudges would go to the shared Redis; the beat's sweep stands
in for them).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.utils import timezone
from standardwebhooks import Webhook

from ledger import services as ledger
from ledger.models import Settlement, Transfer
from oauth import services as identity
from payments import events, webhooks
from payments import services as payments
from payments.delivery import LEASE
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import make_organization
from tests.live import ROOT, child_env, free_port, gunicorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

TRANSFERS_DURING_OUTAGE = 6
HOLD_FIRST_SECONDS = 5.0  # well inside the sender's 10 s total timeout


# --- helpers: a redis-server of our own, a verifying receiver, Celery processes ---------


class OwnRedis:
    """A redis-server on a free loopback port that the test may stop and start again."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.logs / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            wait_for(lambda: _pings(client), 10, "our redis-server answers PING")
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as an orchestrator would; returns once the port is closed."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@dataclass
class Received:
    webhook_id: str
    event_id: str | None  # None: the signature did not verify
    type: str | None


@dataclass
class Receiver:
    """Answers 200 to every request whose Standard Webhooks signature verifies (400 to
    any other). With `hold_first`, the first request is held open that long first."""

    secret: str = ""
    hold_first: float = 0.0
    url: str = ""
    received: list[Received] = field(default_factory=list)
    first_seen: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            entry = Received(headers.get("webhook-id", ""), None, None)
        else:
            entry = Received(headers["webhook-id"], payload["id"], payload["type"])
        with self.lock:
            self.received.append(entry)
            first = not self.first_seen.is_set()
            self.first_seen.set()
        if first and self.hold_first:
            self.release.wait(self.hold_first)
        return 200 if entry.event_id else 400

    def event_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(r.event_id for r in self.received if r.event_id)

    def unverified(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.event_id is None]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender is gone (the test killed it)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a sender killed mid-request; the test looks at what was received

    server = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_nudge_from_the_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process's broker is the machine's shared Redis, not ours; the children's
    # beat sweeps due deliveries every second, which is all a nudge would hasten.
    monkeypatch.setattr(events, "nudge", lambda task: None)


def celery(kind: str, env: dict[str, str], logs: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`celery -A config worker|beat` in a session of its own (so os.killpg reaches it)."""
    log = (logs / f"{kind}-{time.monotonic_ns()}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", kind, "--loglevel", "INFO", *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return process


def worker(env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    return celery(
        "worker",
        env,
        logs,
        "--pool",
        "solo",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    )


def beat(env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    # deliver-webhooks is due every second; the schedule file goes to the tmp dir.
    return celery("beat", env, logs, "--schedule", str(logs / "celerybeat-schedule"))


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group, SIGKILL it after 15 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def wait_for(
    condition: Callable[[], bool], seconds: float, what: str, logs: Path | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}{log_tails(logs)}")
        time.sleep(0.1)


def log_tails(logs: Path | None, lines: int = 25) -> str:
    if logs is None:
        return ""
    tails = []
    for log in sorted(logs.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"\n--- {log.name} ---\n" + "\n".join(text))
    return "".join(tails)


def overrides(own_redis: OwnRedis) -> dict[str, str]:
    """What every child process gets on top of child_env(): our Redis, loopback
    receivers allowed, rate limits out of the way."""
    return {
        "REDIS_URL": own_redis.url,
        "WEBHOOKS_ALLOW_LOOPBACK": "true",
        "API_RATE_LIMIT": "100000",
        "API_IP_RATE_LIMIT": "100000",
    }


def error_summary(answer: requests.Response) -> str:
    """The problem+json title, or the <title> of an HTML error page."""
    if answer.headers.get("Content-Type", "").startswith("application/problem+json"):
        return str(answer.json().get("title"))
    title = re.search(r"<title>(.*?)</title>", answer.text, re.DOTALL)
    return " ".join((title.group(1) if title else answer.text[:200]).split())


def subscribe(organization_id: str, receiver: Receiver) -> WebhookEndpoint:
    endpoint = webhooks.webhook_endpoint_create(
        organization_id=organization_id, livemode=False, url=receiver.url, enabled_events=["*"]
    )
    receiver.secret = endpoint.secret
    return endpoint


# --- the tests --------------------------------------------------------------------------


def test_transfers_made_while_redis_is_down_are_all_delivered_once_it_is_back(
    receiver: Receiver, tmp_path: Path
) -> None:
    own_redis = OwnRedis(tmp_path)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        own_redis.start()
        organization = make_organization("Alice Ltd")
        endpoint = subscribe(organization.id, receiver)
        usd, other = payments.sandbox_open(holder=organization.id, currencies=("USD", "USD"))
        secret = identity.api_key_create(organization=organization, livemode=False).secret
        env = child_env(**overrides(own_redis))

        answers: list[requests.Response] = []
        with gunicorn(**overrides(own_redis)) as base:
            assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
            own_redis.stop()
            # The outage is real for the web process: its broker check says so.
            ready = requests.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 503, ready.text
            assert ready.json()["down"] == ["broker"]
            for n in range(TRANSFERS_DURING_OUTAGE):
                answers.append(
                    requests.post(
                        f"{base}/v1/transfers",
                        json={
                            "source_account": usd.id,
                            "destination_account": other.id,
                            "amount": 100 + n,
                            "currency": "USD",
                            "settlement": "manual",
                            "description": f"made during the outage #{n}",
                        },
                        headers={"Authorization": f"Bearer {secret}"},
                        timeout=30,
                    )
                )

        # A broker (and cache) outage must not cost the caller the request: the transfer
        # and its outbox rows commit, only the nudge to the worker is lost.
        assert [a.status_code for a in answers] == [201] * TRANSFERS_DURING_OUTAGE, (
            f"with Redis down, POST /v1/transfers answered {[a.status_code for a in answers]}: "
            f"{error_summary(answers[0])}; transfers committed meanwhile: "
            f"{Transfer.objects.filter(holder=organization.id).count()}"
        )
        transfer_ids = {a.json()["id"] for a in answers}
        created = Event.objects.filter(organization_id=organization.id)
        assert sorted(e.type for e in created) == ["transfer.created"] * TRANSFERS_DURING_OUTAGE
        assert {e.data["object"]["id"] for e in created} == transfer_ids
        expected = {e.id for e in created}
        owed = WebhookDelivery.objects.filter(endpoint=endpoint)
        assert {d.event_id for d in owed} == expected
        assert {(d.status, d.attempt_count) for d in owed} == {("pending", 0)}
        assert receiver.received == []

        # Redis comes back (empty: --save ""), and the worker and beat start on it.
        own_redis.start()
        processes.append(beat(env, tmp_path))
        processes.append(worker(env, tmp_path))
        wait_for(
            lambda: (
                set(receiver.event_ids()) >= expected
                and not owed.exclude(status="succeeded").exists()
            ),
            60,
            "every event delivered and every delivery marked succeeded",
            tmp_path,
        )
        time.sleep(2.5)  # two more sweeps: anything sent twice would show up now
    finally:
        for process in reversed(processes):
            stop_process(process)
        own_redis.stop()

    assert receiver.unverified() == []
    assert receiver.event_ids() == Counter(dict.fromkeys(expected, 1)), "each event exactly once"
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    assert sorted(d.event_id for d in deliveries) == sorted(expected), "one delivery per event"
    assert {(d.status, d.attempt_count) for d in deliveries} == {("succeeded", 1)}
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
    assert sorted(a.delivery.event_id for a in attempts) == sorted(expected)
    assert {a.status_code for a in attempts} == {200}


def test_a_worker_killed_mid_delivery_leaves_it_due_again_after_the_lease(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.hold_first = HOLD_FIRST_SECONDS
    own_redis = OwnRedis(tmp_path)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        own_redis.start()
        organization = make_organization("Alice Ltd")
        endpoint = subscribe(organization.id, receiver)
        usd, other = payments.sandbox_open(holder=organization.id, currencies=("USD", "USD"))
        transfer = payments.transfer_create(
            organization_id=organization.id,
            livemode=False,
            spec=ledger.TransferSpec(
                source_id=usd.id,
                destination_id=other.id,
                amount=700,
                currency="USD",
                settlement=Settlement.MANUAL,
            ),
        )
        [event] = Event.objects.filter(organization_id=organization.id)
        [owed] = WebhookDelivery.objects.filter(endpoint=endpoint)
        env = child_env(**overrides(own_redis))

        processes.append(beat(env, tmp_path))
        first_worker = worker(env, tmp_path)
        processes.append(first_worker)
        assert receiver.first_seen.wait(45), "the first worker sent" + log_tails(tmp_path)
        # The receiver holds that request open: the worker is inside webhook_send.
        os.killpg(first_worker.pid, signal.SIGKILL)
        first_worker.wait(timeout=10)
        assert first_worker.returncode == -signal.SIGKILL

        # The claim pushed next_attempt_at one lease ahead and nothing else: no attempt
        # was recorded, so nothing says the event arrived.
        owed.refresh_from_db()
        now = timezone.now()
        assert (owed.status, owed.attempt_count) == ("pending", 0)
        assert owed.next_attempt_at is not None
        assert now + LEASE - dt.timedelta(seconds=15) < owed.next_attempt_at <= now + LEASE
        assert not WebhookAttempt.objects.filter(delivery=owed).exists()
        assert len(receiver.received) == 1

        # The lease is 60 s and lives in another process's code, so rather than sleep
        # through it the test does what its expiry does: makes the row due now. Nothing
        # else about the row is touched; the next worker must find and finish it alone.
        WebhookDelivery.objects.filter(id=owed.id).update(next_attempt_at=timezone.now())
        processes.append(worker(env, tmp_path))
        wait_for(
            lambda: WebhookDelivery.objects.get(id=owed.id).status != "pending",
            45,
            "the next worker finished the delivery",
            tmp_path,
        )
    finally:
        for process in reversed(processes):
            stop_process(process)
        own_redis.stop()

    owed.refresh_from_db()
    assert (owed.status, owed.attempt_count) == ("succeeded", 1)
    assert owed.next_attempt_at is None
    [attempt] = WebhookAttempt.objects.filter(delivery=owed)
    assert (attempt.status_code, attempt.error) == (200, "")
    # At least once: the receiver saw the event twice, under the same webhook-id, so a
    # receiver that dedupes on it processes it once. Both copies verify.
    assert receiver.unverified() == []
    assert receiver.event_ids() == Counter({event.id: 2})
    assert {r.webhook_id for r in receiver.received} == {event.id}
    assert event.data["object"]["id"] == transfer.id
