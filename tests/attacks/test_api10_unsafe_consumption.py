"""API10, unsafe consumption of APIs, from the side of those who consume ours: a webhook
receiver that verifies with the `standardwebhooks` package, as docs/webhooks.md shows,
accepts what our sender really delivered and nothing an attacker made of it — a body
signed with another secret, a tampered body, a signature moved to another body, a
delivery replayed more than five minutes later (as it was, or with a fresh timestamp),
or one with a header missing.

The deliveries are real: payments.delivery sends them over HTTP to a receiver on
loopback (so loopback is allowed here, and only here), which keeps the bytes exactly as
they arrived.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import standardwebhooks.webhooks
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payments import webhooks
from payments.delivery import delivery_attempt
from payments.models import Event, WebhookEndpoint
from tests.attacks.support import Objects, Received, serving

pytestmark = pytest.mark.django_db


def receiver_accepts(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """What a receiver does, per docs/webhooks.md."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def sent(objects: Objects, event_id: str) -> Received:
    """Deliver `event_id` to `objects`' endpoint for real; what the receiver got."""
    with serving() as receiver:
        WebhookEndpoint.objects.filter(id=objects.endpoint).update(url=receiver.url())
        endpoint = WebhookEndpoint.objects.get(id=objects.endpoint)
        [delivery] = webhooks.event_redeliver(
            event=Event.objects.get(id=event_id), endpoint=endpoint
        )
        attempt = delivery_attempt(delivery=delivery)
    assert attempt.status_code == 200, attempt.error
    [received] = receiver.received
    return received


@pytest.fixture
def delivered(alices: Objects, settings: Any) -> tuple[str, Received]:
    """(the endpoint's secret, a delivery our sender made to it)."""
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    return WebhookEndpoint.objects.get(id=alices.endpoint).secret, sent(alices, alices.event)


def test_the_receiver_accepts_what_we_really_sent(delivered: tuple[str, Received]) -> None:
    secret, received = delivered
    assert receiver_accepts(secret, received.body, received.headers)
    assert json.loads(received.body)["type"] == "transfer.created"


def test_a_body_signed_with_another_secret(
    delivered: tuple[str, Received], charlies: Objects
) -> None:
    secret, received = delivered
    attackers = WebhookEndpoint.objects.get(id=charlies.endpoint).secret  # a real one
    forged = {
        **received.headers,
        "webhook-signature": Webhook(attackers).sign(
            received.headers["webhook-id"],
            dt.datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), dt.UTC),
            received.body,
        ),
    }
    assert receiver_accepts(attackers, received.body, forged), "a valid signature, of theirs"
    assert not receiver_accepts(secret, received.body, forged)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body.replace(b'"amount":1000', b'"amount":9000'),
        lambda body: body.replace(b'"livemode":false', b'"livemode":true'),
        lambda body: body + b" ",
        lambda body: json.dumps(json.loads(body), indent=1).encode(),  # the same JSON
    ],
    ids=["amount", "livemode", "trailing-space", "reformatted"],
)
def test_a_tampered_body(delivered: tuple[str, Received], tamper: Any) -> None:
    secret, received = delivered
    tampered = tamper(received.body)
    assert tampered != received.body
    assert not receiver_accepts(secret, tampered, received.headers)


def test_a_signature_moved_onto_another_delivery(
    delivered: tuple[str, Received], alices: Objects
) -> None:
    secret, received = delivered
    other_event = Event.objects.filter(data__object__id=alices.settled).first()
    assert other_event is not None
    other = sent(alices, other_event.id)
    assert receiver_accepts(secret, other.body, other.headers)
    transplanted = {**other.headers, "webhook-signature": received.headers["webhook-signature"]}
    assert not receiver_accepts(secret, other.body, transplanted)


@pytest.fixture
def six_minutes_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver's clock, when a captured delivery is replayed to it."""

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Later:
            moment = dt.datetime.now(tz) + dt.timedelta(minutes=6)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", Later)


def test_a_delivery_replayed_six_minutes_later(
    delivered: tuple[str, Received], six_minutes_later: None
) -> None:
    secret, received = delivered
    assert not receiver_accepts(secret, received.body, received.headers)


def test_a_replay_with_a_fresh_timestamp(
    delivered: tuple[str, Received], six_minutes_later: None
) -> None:
    secret, received = delivered
    fresh = int(received.headers["webhook-timestamp"]) + 360
    refreshed = {**received.headers, "webhook-timestamp": str(fresh)}
    assert not receiver_accepts(secret, received.body, refreshed)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_delivery_with_a_header_missing(delivered: tuple[str, Received], header: str) -> None:
    secret, received = delivered
    stripped = {k: v for k, v in received.headers.items() if k.lower() != header}
    assert len(stripped) == len(received.headers) - 1
    assert not receiver_accepts(secret, received.body, stripped)
