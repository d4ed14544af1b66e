"""API7, server side request forgery: a webhook endpoint's URL is a request our servers
make to an address an outsider chose. With WEBHOOKS_ALLOW_LOOPBACK off (production),
every inward target is refused twice over:

- when it is registered or changed (`400` naming `url`, nothing stored), for everything
  the URL shows on its face: loopback, private, link-local and metadata addresses in any
  spelling, and schemes other than http(s);
- when a delivery is sent, after DNS, for every address the name resolves to: a row that
  holds an inward URL anyway (stored before a rule existed, or while loopback was
  allowed) and a name the attacker points inward gets no connection at all — each
  socket connect is recorded, and a canary listening on loopback must hear nothing.

Redirects are never followed: a receiver answering 3xx towards the metadata service or
the canary gets its answer logged as a failure, and nothing else is contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from payments import webhooks
from payments.delivery import delivery_attempt
from payments.models import Event, WebhookAttempt, WebhookEndpoint
from tests.api.support import problem
from tests.attacks.support import (
    PUBLIC_URL,
    Api,
    Canary,
    Objects,
    attacker_dns,
    changes,
    connections_recorded,
    serving,
    snapshot,
)

pytestmark = pytest.mark.django_db
PUBLIC_IP = "93.184.215.14"  # a global address; the tests never let a packet go there

# What each target is, and the URL; {port} is the canary's, so that a connection to
# loopback, had one been made, would be heard.
INWARD = {
    "loopback": "http://127.0.0.1:{port}/hook",
    "loopback-name": "http://localhost:{port}/hook",
    "loopback-name-with-dot": "http://localhost.:{port}/hook",
    "loopback-subdomain": "http://api.localhost:{port}/hook",
    "loopback-circled-letters": "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:{port}/hook",
    "unspecified": "http://0.0.0.0:{port}/hook",
    "unspecified-zero": "http://0:{port}/hook",
    "ipv6-loopback": "http://[::1]:{port}/hook",
    "ipv6-unspecified": "http://[::]:{port}/hook",
    "ipv4-mapped-ipv6": "http://[::ffff:127.0.0.1]:{port}/hook",
    "ipv4-mapped-ipv6-hex": "http://[::ffff:7f00:1]:{port}/hook",
    "private-10": "http://10.0.0.1/hook",
    "private-172-16": "http://172.16.0.1/hook",
    "private-192-168": "http://192.168.1.1/hook",
    "metadata-ip": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "metadata-name": "http://metadata.google.internal/computeMetadata/v1/",
    "metadata-ipv4-mapped": "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "metadata-nat64": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "carrier-grade-nat": "http://100.64.0.1/hook",
    "decimal": "http://2130706433:{port}/hook",
    "octal": "http://017700000001:{port}/hook",
    "octal-dotted": "http://0177.0.0.1:{port}/hook",
    "hex-dotted": "http://0x7f.1:{port}/hook",
    "hex-whole": "http://0x7f000001:{port}/hook",
    "short-form": "http://127.1:{port}/hook",
    "zero-padded": "http://127.000.000.001:{port}/hook",
    "fullwidth-digits": "http://①②⑦.0.0.1:{port}/hook",
    "ipv6-unique-local": "http://[fd00::1]/hook",
    "ipv6-link-local": "http://[fe80::1]/hook",
    "6to4-private": "http://[2002:a00:1::1]/hook",
    "multicast": "http://224.0.0.1/hook",
    "credentials-confusion": "http://hooks.example.com@127.0.0.1:{port}/hook",
    "gopher-to-redis": "gopher://127.0.0.1:6379/_FLUSHALL",
    "file": "file:///etc/passwd",
}
# Names that look public but that the attacker's DNS points inward: what it answers.
POINTED_INWARD: dict[str, list[tuple[str, ...]]] = {
    "localtest.me": [("127.0.0.1",)],
    "metadata.attacker.example": [("169.254.169.254",)],
    "private.attacker.example": [("10.1.2.3",)],
    "v6.attacker.example": [("::1",)],
    "public-and-private.attacker.example": [(PUBLIC_IP, "10.0.0.7")],
    "nat64.attacker.example": [("64:ff9b::a9fe:a9fe",)],
}


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def registered(api: Api, url: str) -> Any:
    return api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})


@pytest.mark.parametrize("target", INWARD)
def test_an_inward_url_is_refused_when_registered(api: Api, canary: Canary, target: str) -> None:
    before = snapshot()
    response = registered(api, INWARD[target].format(port=canary.port))
    assert problem(response) == (400, "validation_error", "url"), response.content[:300]
    assert snapshot() == before, changes(before, snapshot())


@pytest.mark.parametrize("target", INWARD)
def test_an_inward_url_is_refused_when_an_endpoint_is_changed(
    api: Api, alices: Objects, canary: Canary, target: str
) -> None:
    before = snapshot()
    response = api.request(
        "PATCH",
        f"/v1/webhook_endpoints/{alices.endpoint}",
        {"url": INWARD[target].format(port=canary.port)},
    )
    assert problem(response) == (400, "validation_error", "url"), response.content[:300]
    assert snapshot() == before, changes(before, snapshot())
    assert WebhookEndpoint.objects.get(id=alices.endpoint).url == PUBLIC_URL


def deliver_to(
    objects: Objects, url: str, *, resolve: dict[str, list[tuple[str, ...]]] | None = None
) -> Any:
    """Send `objects`' event to its endpoint, now pointing at `url`: (the attempt, every
    connection the sender tried, the names it looked up)."""
    WebhookEndpoint.objects.filter(id=objects.endpoint).update(url=url)
    endpoint = WebhookEndpoint.objects.get(id=objects.endpoint)
    [delivery] = webhooks.event_redeliver(
        event=Event.objects.get(id=objects.event), endpoint=endpoint
    )
    with (
        attacker_dns(resolve or {}) as lookups,
        connections_recorded(allowed=lambda address: False) as connections,
    ):
        attempt = delivery_attempt(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None, "retried"
    return attempt, connections, lookups


@pytest.mark.parametrize("target", INWARD)
def test_an_inward_url_stored_anyway_gets_no_connection(
    alices: Objects, canary: Canary, target: str
) -> None:
    attempt, connections, _ = deliver_to(alices, INWARD[target].format(port=canary.port))

    assert attempt.status_code is None
    assert attempt.error.startswith(("refused", "scheme must be", "credentials in the URL"))
    assert connections == []
    assert not canary.heard()


@pytest.mark.parametrize("name", POINTED_INWARD)
def test_a_name_the_attacker_points_inward_gets_no_connection(
    api: Api, alices: Objects, canary: Canary, name: str
) -> None:
    url = f"http://{name}:{canary.port}/hook"
    assert registered(api, url).status_code == 201, "a name cannot be judged before DNS"

    attempt, connections, lookups = deliver_to(alices, url, resolve={name: POINTED_INWARD[name]})

    assert attempt.status_code is None
    assert attempt.error.startswith("refused: ")
    assert lookups == [name], "one lookup: the address checked is the address used"
    assert connections == [], "not even to the public address beside an inward one"
    assert not canary.heard()


def test_a_rebinding_name_gets_only_its_public_address(alices: Objects, canary: Canary) -> None:
    """The attacker answers a public address to the first lookup and loopback to every
    later one: the one lookup made is the one connected to."""
    url = f"http://rebind.attacker.example:{canary.port}/hook"
    attempt, connections, lookups = deliver_to(
        alices, url, resolve={"rebind.attacker.example": [(PUBLIC_IP,), ("127.0.0.1",)]}
    )
    assert lookups == ["rebind.attacker.example"]
    assert connections == [(PUBLIC_IP, canary.port)]
    assert attempt.error == "connection refused"  # by the test, standing in for the internet
    assert not canary.heard()
    _, again, _ = deliver_to(alices, url, resolve={"rebind.attacker.example": [("127.0.0.1",)]})
    assert again == [], "the next delivery looks up again, and is refused"
    assert not canary.heard()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("towards", ["metadata", "canary"])
def test_a_redirect_is_not_followed(
    alices: Objects, canary: Canary, settings: Any, status: int, towards: str
) -> None:
    # The receiver is on loopback, so loopback must be allowed for this one attack: the
    # canary on loopback then proves the redirect was not followed even where it could be.
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    location = {
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "canary": f"http://127.0.0.1:{canary.port}/hook",
    }[towards]
    with serving() as receiver:
        receiver.reply = (status, [("Location", location)])
        port = receiver.server_port
        WebhookEndpoint.objects.filter(id=alices.endpoint).update(url=receiver.url())
        endpoint = WebhookEndpoint.objects.get(id=alices.endpoint)
        [delivery] = webhooks.event_redeliver(
            event=Event.objects.get(id=alices.event), endpoint=endpoint
        )
        with connections_recorded(allowed=lambda address: address[1] == port) as connections:
            attempt = delivery_attempt(delivery=delivery)

    assert (attempt.status_code, attempt.error) == (status, "")
    assert len(receiver.received) == 1
    assert connections == [("127.0.0.1", port)]
    assert not canary.heard()
    delivery.refresh_from_db()
    assert delivery.status == "pending", "a 3xx is a failure, retried later"
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1
