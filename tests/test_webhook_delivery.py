"""Deliveries to a real HTTP receiver on loopback, verified with the `standardwebhooks`
package as any receiver would; retries on the schedule; a real Celery worker."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from ledger import services as ledger
from ledger.models import Settlement, Transfer
from oauth.models import Organization
from payments import services as payments
from payments import webhooks
from payments.delivery import deliveries_run
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import make_organization
from tests.live import celery_worker

# Sends run in the test's own thread (concurrency=1): worker threads would have their own
# connections, which cannot see the test's uncommitted rows.
pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 answering each request with the next status."""

    answers: list[int] = field(default_factory=lambda: [200])
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((time.monotonic(), dict(self.headers), body))
            status = state.answer()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture
def organization() -> Organization:
    return make_organization("Alice Ltd")


def subscribe(organization: Organization, url: str) -> WebhookEndpoint:
    return webhooks.webhook_endpoint_create(
        organization_id=organization.id, livemode=False, url=url, enabled_events=["*"]
    )


def make_transfer(organization: Organization) -> Transfer:
    usd, other = payments.sandbox_open(holder=organization.id, currencies=("USD", "USD"))
    return payments.transfer_create(
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


def test_a_delivery_is_signed_so_a_standard_receiver_verifies_it(
    receiver: Receiver, organization: Organization
) -> None:
    endpoint = subscribe(organization, receiver.url)
    transfer = make_transfer(organization)
    assert deliveries_run(concurrency=1) == 1
    [(_, headers, body)] = receiver.received
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "transfer.created"
    assert payload["data"]["object"]["id"] == transfer.id
    assert headers["webhook-id"] == payload["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(body.replace(b"700", b"900"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    stale = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(body, stale)
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_during_a_rotation_both_secrets_verify(
    receiver: Receiver, organization: Organization
) -> None:
    endpoint = subscribe(organization, receiver.url)
    old = endpoint.secret
    new = webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint)
    make_transfer(organization)
    deliveries_run(concurrency=1)
    [(_, headers, body)] = receiver.received
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_a_failing_receiver_gets_retries_on_the_schedule_until_it_answers(
    receiver: Receiver, organization: Organization, settings: Any
) -> None:
    settings.WEBHOOK_TIME_SCALE = 0.002  # 5 s -> 10 ms, 5 min -> 0.6 s, 30 min -> 3.6 s
    receiver.answers = [500, 500, 500, 200]
    subscribe(organization, receiver.url)
    make_transfer(organization)
    deadline = time.monotonic() + 30
    while WebhookDelivery.objects.get().status == "pending" and time.monotonic() < deadline:
        deliveries_run(concurrency=1)
        time.sleep(0.02)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded"
    attempts = list(WebhookAttempt.objects.order_by("attempted_at"))
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert len(receiver.received) == 4
    gaps = [b.attempted_at - a.attempted_at for a, b in itertools.pairwise(attempts)]
    expected = [dt.timedelta(seconds=5), dt.timedelta(minutes=5), dt.timedelta(minutes=30)]
    for gap, planned in zip(gaps, expected, strict=True):
        assert planned * 0.002 * 0.85 <= gap <= planned * 0.002 * 1.5 + dt.timedelta(seconds=0.5)


def test_410_gone_disables_the_endpoint(receiver: Receiver, organization: Organization) -> None:
    receiver.answers = [410]
    endpoint = subscribe(organization, receiver.url)
    make_transfer(organization)
    deliveries_run(concurrency=1)
    endpoint.refresh_from_db()
    assert endpoint.status == "disabled"
    assert WebhookDelivery.objects.get().status == "failed"


def test_a_transfer_that_rolls_back_sends_nothing(
    receiver: Receiver, organization: Organization
) -> None:
    subscribe(organization, receiver.url)

    def fails_after_the_transfer() -> None:
        with transaction.atomic():
            make_transfer(organization)
            raise RuntimeError("the request failed after the transfer")

    with pytest.raises(RuntimeError):
        fails_after_the_transfer()
    assert deliveries_run(concurrency=1) == 0
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_delivers_after_commit(receiver: Receiver) -> None:
    organization = make_organization("Alice Ltd")
    endpoint = subscribe(organization, receiver.url)
    with celery_worker(WEBHOOKS_ALLOW_LOOPBACK="true"):
        transfer = make_transfer(organization)
        deadline = time.monotonic() + 45
        while not receiver.received and time.monotonic() < deadline:
            # The nudge queued at commit may land before the worker listens; the beat's
            # sweep would catch it, here the test plays the beat.
            from payments.tasks import deliver_webhooks

            deliver_webhooks.delay()
            time.sleep(1)
    assert receiver.received, "the worker delivered the event"
    _, headers, body = receiver.received[0]
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["data"]["object"]["id"] == transfer.id
    assert json.loads(body)["type"] == "transfer.created"


def test_the_attempts_log_and_a_redelivery_through_the_api(
    client: Any, receiver: Receiver, organization: Organization
) -> None:
    from oauth import services as identity

    receiver.answers = [500, 200]
    endpoint = subscribe(organization, receiver.url)
    make_transfer(organization)
    deliveries_run(concurrency=1)
    secret = identity.api_key_create(organization=organization, livemode=False).secret
    auth = {"Authorization": f"Bearer {secret}"}
    log = client.get(f"/v1/webhook_endpoints/{endpoint.id}/deliveries", headers=auth).json()
    [delivery] = log["data"]
    assert delivery["status"] == "pending"
    assert [a["status_code"] for a in delivery["attempts"]] == [500]
    assert delivery["attempts"][0]["response_body"] == "ok"
    again = client.post(
        f"/v1/events/{delivery['event']}/redeliver",
        "{}",
        content_type="application/json",
        headers=auth,
    )
    assert again.status_code == 201
    assert len(again.json()["data"]) == 1
    deliveries_run(concurrency=1)
    assert len(receiver.received) == 2
    statuses = sorted(d.status for d in WebhookDelivery.objects.all())
    assert statuses == ["pending", "succeeded"]


def test_five_days_of_failure_disable_the_endpoint_and_tell_its_owners(
    receiver: Receiver,
    organization: Organization,
    settings: Any,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_TIME_SCALE = 0.000002  # five days -> about 0.9 s
    receiver.answers = [500]
    failing = subscribe(organization, receiver.url)
    make_transfer(organization)
    deadline = time.monotonic() + 20
    with django_capture_on_commit_callbacks(execute=True):
        while WebhookDelivery.objects.filter(status="pending").exists():
            assert time.monotonic() < deadline, "gave up in time"
            deliveries_run(concurrency=1)
            time.sleep(0.05)
    failing.refresh_from_db()
    assert failing.status == "disabled"
    assert "five days" in failing.disabled_reason
    assert WebhookAttempt.objects.filter(delivery__endpoint=failing).count() >= 3
    [mail] = mailoutbox
    assert organization.members.get().email in mail.to
    assert failing.url in mail.body
    [disabled] = Event.objects.filter(type="webhook_endpoint.disabled")
    assert disabled.data["object"]["id"] == failing.id
    assert disabled.data["object"]["status"] == "disabled"


def test_an_endpoint_can_be_sent_everything_since_a_time_again(
    client: Any, receiver: Receiver, organization: Organization
) -> None:
    from django.utils import timezone

    from oauth import services as identity

    endpoint = subscribe(organization, receiver.url)
    make_transfer(organization)
    make_transfer(organization)
    deliveries_run(concurrency=1)
    assert len(receiver.received) == 2
    secret = identity.api_key_create(organization=organization, livemode=False).secret
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    answer = client.post(
        f"/v1/webhook_endpoints/{endpoint.id}/replay",
        json.dumps({"since": since}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 202
    assert answer.json()["deliveries"] == 2
    deliveries_run(concurrency=1)
    ids = [headers["webhook-id"] for _, headers, _ in receiver.received]
    assert len(ids) == 4
    assert sorted(ids[2:]) == sorted(ids[:2]), "the same events, with the same ids"


def test_one_endpoints_backlog_cannot_fill_a_batch(organization: Organization) -> None:
    from payments.delivery import PER_ENDPOINT_BATCH, deliveries_claim

    busy = subscribe(organization, "https://busy.example/hooks")
    make_transfer(organization)
    WebhookDelivery.objects.all().delete()
    [event] = Event.objects.all()
    backlog = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=busy, next_attempt_at=event.created_at)
            for _ in range(PER_ENDPOINT_BATCH + 50)
        ]
    )
    live = subscribe(organization, "https://live.example/hooks")
    make_transfer(organization)  # due after the busy endpoint's whole backlog
    claimed = deliveries_claim(limit=PER_ENDPOINT_BATCH + 10)
    by_endpoint = [d.endpoint_id for d in claimed]
    assert by_endpoint.count(busy.id) == PER_ENDPOINT_BATCH < len(backlog)
    assert live.id in by_endpoint, "the live endpoint is not stuck behind the busy one"
    leased = WebhookDelivery.objects.filter(next_attempt_at__gt=timezone.now())
    assert set(leased.values_list("id", flat=True)) == {d.id for d in claimed}


def test_a_dead_endpoint_holds_at_most_its_share_of_the_senders() -> None:
    from payments.delivery import PER_ENDPOINT, _lanes

    dead = [WebhookDelivery(endpoint_id="we_dead") for _ in range(30)]
    live = [WebhookDelivery(endpoint_id="we_live") for _ in range(2)]
    lanes = _lanes(dead[:10] + live + dead[10:])
    dead_lanes = [lane for lane in lanes if lane[0].endpoint_id == "we_dead"]
    assert len(dead_lanes) == PER_ENDPOINT
    assert sorted(map(len, dead_lanes)) == [7, 7, 8, 8]
    assert [len(lane) for lane in lanes if lane[0].endpoint_id == "we_live"] == [1, 1]
    assert all(len({d.endpoint_id for d in lane}) == 1 for lane in lanes)


def test_a_slow_receiver_gets_its_lane_budget_and_the_rest_is_released(
    receiver: Receiver, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments import delivery

    monkeypatch.setattr(delivery, "LANE_BUDGET", dt.timedelta(0))
    endpoint = subscribe(organization, receiver.url)
    for _ in range(2 * delivery.PER_ENDPOINT):
        make_transfer(organization)
    assert deliveries_run(concurrency=1) == delivery.PER_ENDPOINT, "one send per lane"
    assert len(receiver.received) == delivery.PER_ENDPOINT
    released = WebhookDelivery.objects.filter(endpoint=endpoint, status="pending")
    assert released.count() == delivery.PER_ENDPOINT
    assert all(d.attempt_count == 0 for d in released), "released, not counted as a try"
    assert all(d.next_attempt_at and d.next_attempt_at <= timezone.now() for d in released)
    assert WebhookAttempt.objects.count() == delivery.PER_ENDPOINT
    monkeypatch.undo()
    assert deliveries_run(concurrency=1) == delivery.PER_ENDPOINT
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 2 * delivery.PER_ENDPOINT


def test_a_batch_sent_by_many_senders_is_recorded_once_each(
    receiver: Receiver, organization: Organization
) -> None:
    """Senders are threads that never touch the database: the batch's attempts are
    written by the claiming thread, so this works inside the test's transaction."""
    receiver.answers = [200, 500, 200]
    endpoints = [subscribe(organization, receiver.url) for _ in range(3)]
    for _ in range(10):
        make_transfer(organization)
    assert deliveries_run(concurrency=8) == 30
    assert len(receiver.received) == 30
    received = sorted(
        (json.loads(body)["id"], headers["webhook-signature"])
        for _, headers, body in receiver.received
    )
    assert len({signature for _, signature in received}) == 30
    assert WebhookAttempt.objects.count() == 30
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 29
    retried = WebhookDelivery.objects.get(status="pending")
    assert retried.attempt_count == 1
    assert retried.next_attempt_at and retried.next_attempt_at > timezone.now()
    assert WebhookAttempt.objects.get(status_code=500).delivery == retried
    for endpoint in endpoints:
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 10


def test_a_backlog_is_handed_on_to_a_new_run_after_the_runs_time(
    receiver: Receiver, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run sends a batch, then queues the rest behind the worker's other tasks."""
    from payments import delivery, tasks

    monkeypatch.setattr(tasks, "DELIVERY_RUN_SECONDS", 0.0)
    monkeypatch.setattr(delivery, "deliveries_run", lambda: deliveries_run(limit=2, concurrency=1))
    queued: list[str] = []
    monkeypatch.setattr(tasks, "nudge", queued.append)
    subscribe(organization, receiver.url)
    for _ in range(3):
        make_transfer(organization)
    assert tasks.deliver_webhooks() == 2
    assert queued == ["payments.tasks.deliver_webhooks"]
    assert WebhookDelivery.objects.filter(status="pending").count() == 1
    monkeypatch.setattr(tasks, "DELIVERY_RUN_SECONDS", 60.0)
    assert tasks.deliver_webhooks() == 1
    assert queued == ["payments.tasks.deliver_webhooks"], "nothing left to hand on"
