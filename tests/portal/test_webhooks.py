"""The webhook endpoint pages: every delivery visible, test events, replay and the signing
secret behind the password. Deliveries go to a real HTTP receiver on 127.0.0.1 and are
verified with the `standardwebhooks` package, as any receiver would."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.template.defaultfilters import floatformat
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from ledger import services as ledger
from ledger.models import Settlement
from oauth.models import AuditEntry, Organization, Role, User
from payments import services as payments
from payments import webhooks
from payments.delivery import deliveries_run
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import PASSWORD, add_member, make_organization, make_user
from tests.portal.conftest import Cast, client_for, post

pytestmark = pytest.mark.django_db

# --- a receiver, and small helpers ---------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 answering each request with the next status."""

    answers: list[int] = field(default_factory=lambda: [200])
    body: bytes = b'{"received": true}'
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers), body))
            self.send_response(state.answer())
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with override_settings(WEBHOOKS_ALLOW_LOOPBACK=True):
        yield state
    server.shutdown()
    server.server_close()


def add_endpoint(
    organization: Organization,
    url: str = "https://hooks.example.test/openpay",
    *,
    livemode: bool = False,
    events: tuple[str, ...] = ("*",),
) -> WebhookEndpoint:
    return webhooks.webhook_endpoint_create(
        organization_id=organization.id, livemode=livemode, url=url, enabled_events=list(events)
    )


def deliver() -> int:
    """What the worker's task does, in this thread: worker threads would have their own
    database connections, which cannot see the test's uncommitted rows."""
    return deliveries_run(concurrency=1)


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def member(cast: Cast, name: str, role: Role) -> User:
    user = make_user(name)
    add_member(cast.alice_org, user, role)
    return user


def audits(organization: Organization, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(organization_id=organization.id, action=action))


def snapshot(organization: Organization) -> tuple[Any, ...]:
    """Everything a webhook page could change."""
    return (
        list(
            WebhookEndpoint.objects.filter(organization_id=organization.id).order_by("id").values()
        ),
        list(WebhookDelivery.objects.order_by("id").values_list("id", "status")),
        Event.objects.count(),
        AuditEntry.objects.filter(organization_id=organization.id).count(),
    )


def new_endpoint_form(**changes: Any) -> dict[str, Any]:
    return {
        "url": "https://hooks.example.test/new",
        "description": "Orders service",
        "mode": "test",
        "enabled_events": ["transfer.settled", "transfer.failed"],
        "enabled": "on",
        **changes,
    }


@dataclass
class Alices:
    endpoint: WebhookEndpoint
    delivery: WebhookDelivery


@pytest.fixture
def alices(cast: Cast) -> Alices:
    endpoint = add_endpoint(cast.alice_org)
    event = webhooks.webhook_endpoint_test(endpoint=endpoint)
    return Alices(endpoint, WebhookDelivery.objects.get(event=event))


# Every POST of these pages, with data that would change something if it were allowed.
ACTIONS = ["add", "edit", "status", "test", "reveal", "rotate", "replay", "replay-delivery"]


def action(name: str, alices: Alices) -> tuple[str, dict[str, Any]]:
    endpoint_id = alices.endpoint.id
    return {
        "add": (reverse("webhook-new"), new_endpoint_form()),
        "edit": (
            reverse("webhook-edit", args=[endpoint_id]),
            new_endpoint_form(url="https://hooks.example.test/changed"),
        ),
        "status": (reverse("webhook-status", args=[endpoint_id]), {"status": "disabled"}),
        "test": (reverse("webhook-test", args=[endpoint_id]), {}),
        "reveal": (reverse("webhook-reveal", args=[endpoint_id]), {"password": PASSWORD}),
        "rotate": (reverse("webhook-rotate", args=[endpoint_id]), {"password": PASSWORD}),
        "replay": (reverse("webhook-replay", args=[endpoint_id]), {"since": "2020-01-01T00:00"}),
        "replay-delivery": (
            reverse("webhook-delivery-replay", args=[endpoint_id]),
            {"delivery": alices.delivery.id},
        ),
    }[name]


def pages(alices: Alices) -> list[str]:
    endpoint = alices.endpoint
    return [
        reverse("webhook", args=[endpoint.id]),
        reverse("webhook-delivery", args=[endpoint.id, alices.delivery.id]),
    ]


# --- who may see and do what ------------------------------------------------------------


def test_alice_sees_her_endpoints_in_both_modes_with_status_and_event_types(cast: Cast) -> None:
    add_endpoint(cast.alice_org, "https://test.example.test/hook", events=("transfer.settled",))
    live = add_endpoint(cast.alice_org, "https://live.example.test/hook", livemode=True)
    webhooks.webhook_endpoint_update(endpoint=live, status="disabled")
    add_endpoint(cast.charlie_org, "https://charlie.example.test/hook")

    listing = page(client_for(cast.alice), reverse("webhooks"))

    assert "https://test.example.test/hook" in listing
    assert "https://live.example.test/hook" in listing
    assert "charlie.example.test" not in listing
    assert ">Test<" in listing and ">Live<" in listing
    assert "transfer.settled" in listing and "All events" in listing
    assert ">Enabled<" in listing and ">Disabled<" in listing
    assert "None yet" in listing


def test_the_list_shows_the_last_deliverys_outcome_and_the_success_rate_of_the_last_day(
    cast: Cast, receiver: Receiver
) -> None:
    receiver.answers = [200, 500]
    endpoint = add_endpoint(cast.alice_org, receiver.url)
    webhooks.webhook_endpoint_test(endpoint=endpoint)
    deliver()
    webhooks.webhook_endpoint_test(endpoint=endpoint)
    deliver()

    listing = page(client_for(cast.alice), reverse("webhooks"))

    assert "50 %" in listing and "2 attempts" in listing
    assert "Retrying" in listing  # the newest delivery got a 500


def test_an_endpoint_disabled_by_failures_says_so(cast: Cast) -> None:
    failing = add_endpoint(cast.alice_org, "https://failing.example.test/hook")
    assert webhooks.webhook_endpoint_disable_failing(
        endpoint=failing, failing_for=dt.timedelta(days=5)
    )
    paused = add_endpoint(cast.alice_org, "https://paused.example.test/hook")
    webhooks.webhook_endpoint_update(endpoint=paused, status="disabled")
    client = client_for(cast.alice)

    assert "Disabled after failures" in page(client, reverse("webhooks"))
    assert "Disabled after failures" in page(client, reverse("webhook", args=[failing.id]))
    assert "Disabled after failures" not in page(client, reverse("webhook", args=[paused.id]))


def test_bob_a_viewer_sees_endpoints_and_deliveries_but_never_the_secret(
    cast: Cast, alices: Alices
) -> None:
    bob = client_for(cast.bob)

    assert alices.endpoint.url in page(bob, reverse("webhooks"))
    for url in pages(alices):
        content = page(bob, url)
        assert alices.endpoint.secret not in content
        assert 'name="password"' not in content
        assert "Send test event" not in content and ">Replay<" not in content
    assert "Add an endpoint</a>" not in page(bob, reverse("webhooks"))
    assert bob.get(reverse("webhook-new")).status_code == 403
    assert bob.get(reverse("webhook-edit", args=[alices.endpoint.id])).status_code == 403


@pytest.mark.parametrize("name", ACTIONS)
def test_bob_a_viewer_cannot_change_anything(cast: Cast, alices: Alices, name: str) -> None:
    url, data = action(name, alices)
    before = snapshot(cast.alice_org)

    response = post(client_for(cast.bob), url, data)

    assert response.status_code == 403
    assert alices.endpoint.secret not in response.content.decode()
    assert snapshot(cast.alice_org) == before
    assert not AccessAttempt.objects.exists()


def test_charlie_gets_404_for_alices_endpoint_and_delivery_pages(
    cast: Cast, alices: Alices
) -> None:
    charlie = client_for(cast.charlie)
    for url in [*pages(alices), reverse("webhook-edit", args=[alices.endpoint.id])]:
        assert charlie.get(url).status_code == 404
    assert alices.endpoint.url not in page(charlie, reverse("webhooks"))


@pytest.mark.parametrize("name", [name for name in ACTIONS if name != "add"])
def test_charlie_gets_404_posting_to_alices_endpoint(cast: Cast, alices: Alices, name: str) -> None:
    url, data = action(name, alices)
    before = snapshot(cast.alice_org)

    response = post(client_for(cast.charlie), url, data)

    assert response.status_code == 404
    assert snapshot(cast.alice_org) == before


def test_a_delivery_id_in_form_data_is_only_found_under_its_own_endpoint(
    cast: Cast, alices: Alices
) -> None:
    charlies = add_endpoint(cast.charlie_org)
    alices_other = add_endpoint(cast.alice_org, "https://other.example.test/hook")
    before = WebhookDelivery.objects.count()

    charlie_tries = post(
        client_for(cast.charlie),
        reverse("webhook-delivery-replay", args=[charlies.id]),
        {"delivery": alices.delivery.id},
    )
    alice_tries = post(
        client_for(cast.alice),
        reverse("webhook-delivery-replay", args=[alices_other.id]),
        {"delivery": alices.delivery.id},
    )
    charlie_looks = client_for(cast.charlie).get(
        reverse("webhook-delivery", args=[charlies.id, alices.delivery.id])
    )

    assert charlie_tries.status_code == alice_tries.status_code == 404
    assert charlie_looks.status_code == 404
    assert WebhookDelivery.objects.count() == before


def test_someone_with_no_organization_gets_404(cast: Cast, alices: Alices) -> None:
    stranger = client_for(make_user("stranger"))
    assert stranger.get(reverse("webhooks")).status_code == 404
    assert stranger.get(pages(alices)[0]).status_code == 404


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_log_in(cast: Cast, alices: Alices, name: str) -> None:
    url, data = action(name, alices)
    before = snapshot(cast.alice_org)
    visitor = Client()

    for response in [visitor.post(url, data), *(visitor.get(p) for p in pages(alices))]:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    assert visitor.get(reverse("webhooks"))["Location"].startswith("/login/")
    assert snapshot(cast.alice_org) == before


@pytest.mark.parametrize("name", ACTIONS)
def test_a_form_posted_without_the_csrf_token_is_refused(
    cast: Cast, alices: Alices, name: str
) -> None:
    url, data = action(name, alices)
    before = snapshot(cast.alice_org)

    response = client_for(cast.alice).post(url, data)

    assert response.status_code == 403
    assert snapshot(cast.alice_org) == before


# --- adding and editing -----------------------------------------------------------------


def test_adding_an_endpoint_shows_its_signing_secret_once(cast: Cast) -> None:
    alice = client_for(cast.alice)

    response = post(alice, reverse("webhook-new"), new_endpoint_form())

    endpoint = WebhookEndpoint.objects.get(organization_id=cast.alice_org.id)
    assert response.status_code == 302
    assert response["Location"] == reverse("webhook", args=[endpoint.id])
    assert endpoint.url == "https://hooks.example.test/new"
    assert endpoint.enabled_events == ["transfer.failed", "transfer.settled"]
    assert endpoint.description == "Orders service"
    assert not endpoint.livemode and endpoint.status == "enabled"
    first = alice.get(response["Location"])
    assert endpoint.secret in first.content.decode()
    assert 'data-copy="#webhook-secret"' in first.content.decode()
    assert "no-store" in first["Cache-Control"]
    assert endpoint.secret not in page(alice, response["Location"])
    [created] = audits(cast.alice_org, "webhook_endpoint.created")
    assert created.target == endpoint.id and created.actor == "alice"
    assert endpoint.secret not in json.dumps(created.detail)


def test_an_endpoint_can_be_added_for_all_events_and_disabled(cast: Cast) -> None:
    post(
        client_for(cast.alice),
        reverse("webhook-new"),
        new_endpoint_form(enabled_events=["*", "transfer.failed"], enabled=""),
    )
    endpoint = WebhookEndpoint.objects.get(organization_id=cast.alice_org.id)
    assert endpoint.enabled_events == ["*"]
    assert endpoint.status == "disabled"


@override_settings(WEBHOOKS_ALLOW_LOOPBACK=False)
@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/", "http://127.0.0.1:8000/hook"]
)
def test_an_inward_url_is_refused_next_to_the_field_with_the_apis_reason(
    cast: Cast, url: str
) -> None:
    response = post(client_for(cast.alice), reverse("webhook-new"), new_endpoint_form(url=url))

    reason = webhooks.url_refusal(url)
    assert reason
    assert response.status_code == 200
    assert response.context["form"].errors["url"] == [reason]
    assert html.escape(reason) in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field_at_fault"),
    [
        ({"url": ""}, "url"),
        ({"url": "https://example.test/" + "a" * 2000}, "url"),
        ({"url": "ftp://files.example.test/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"description": "x" * 501}, "description"),
        ({"enabled_events": []}, "enabled_events"),
        ({"enabled_events": ["transfer.exploded"]}, "enabled_events"),
        ({"mode": "production"}, "mode"),
        ({"mode": ""}, "mode"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_added(
    cast: Cast, changes: dict[str, Any], field_at_fault: str
) -> None:
    response = post(client_for(cast.alice), reverse("webhook-new"), new_endpoint_form(**changes))

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field_at_fault]
    assert str(form[field_at_fault].errors) in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    assert not audits(cast.alice_org, "webhook_endpoint.created")


def test_a_developer_manages_test_endpoints_and_only_admins_touch_live_ones(
    cast: Cast, alices: Alices
) -> None:
    dave = client_for(member(cast, "dave", Role.DEVELOPER))
    live = add_endpoint(cast.alice_org, "https://live.example.test/hook", livemode=True)
    before = snapshot(cast.alice_org)

    refused = post(dave, reverse("webhook-new"), new_endpoint_form(mode="live"))
    assert list(refused.context["form"].errors) == ["mode"]
    for path in ["webhook-status", "webhook-test", "webhook-reveal", "webhook-rotate"]:
        data = {"status": "disabled", "password": PASSWORD}
        assert post(dave, reverse(path, args=[live.id]), data).status_code == 403
    assert dave.get(reverse("webhook-edit", args=[live.id])).status_code == 403
    assert "Send test event" not in page(dave, reverse("webhook", args=[live.id]))
    assert snapshot(cast.alice_org) == before

    assert post(dave, reverse("webhook-test", args=[alices.endpoint.id])).status_code == 302
    assert post(dave, reverse("webhook-new"), new_endpoint_form()).status_code == 302

    erin = client_for(member(cast, "erin", Role.ADMIN))
    assert post(erin, reverse("webhook-new"), new_endpoint_form(mode="live")).status_code == 302
    assert WebhookEndpoint.objects.filter(livemode=True).count() == 2
    revealed = post(erin, reverse("webhook-reveal", args=[live.id]), {"password": PASSWORD})
    assert live.secret in revealed.content.decode()


def test_editing_an_endpoint_changes_it_and_is_audited(cast: Cast, alices: Alices) -> None:
    endpoint = alices.endpoint
    alice = client_for(cast.alice)
    form = page(alice, reverse("webhook-edit", args=[endpoint.id]))
    assert endpoint.url in form and 'name="mode"' not in form

    response = post(
        alice,
        reverse("webhook-edit", args=[endpoint.id]),
        {
            "url": "https://hooks.example.test/v2",
            "description": "v2",
            "enabled_events": ["transfer.failed"],
        },
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.test/v2"
    assert endpoint.description == "v2"
    assert endpoint.enabled_events == ["transfer.failed"]
    assert endpoint.status == "disabled"  # "enabled" was left unticked
    [updated] = audits(cast.alice_org, "webhook_endpoint.updated")
    assert updated.detail == {"changed": ["description", "enabled_events", "status", "url"]}


@override_settings(WEBHOOKS_ALLOW_LOOPBACK=False)
def test_editing_to_an_inward_url_is_refused_and_changes_nothing(
    cast: Cast, alices: Alices
) -> None:
    before = snapshot(cast.alice_org)
    response = post(
        client_for(cast.alice),
        reverse("webhook-edit", args=[alices.endpoint.id]),
        new_endpoint_form(url="http://192.168.1.1/hook"),
    )
    assert response.context["form"].errors["url"] == [webhooks.url_refusal("http://192.168.1.1/")]
    assert snapshot(cast.alice_org) == before


def test_editing_a_disabled_endpoint_keeps_the_reason_it_was_disabled(cast: Cast) -> None:
    endpoint = add_endpoint(cast.alice_org)
    webhooks.webhook_endpoint_disable_failing(endpoint=endpoint, failing_for=dt.timedelta(days=5))

    post(
        client_for(cast.alice),
        reverse("webhook-edit", args=[endpoint.id]),
        {"url": endpoint.url, "description": "now documented", "enabled_events": ["*"]},
    )

    endpoint.refresh_from_db()
    assert endpoint.description == "now documented"
    assert endpoint.disabled_reason == "every delivery failed for five days"


def test_the_disable_and_enable_buttons_switch_the_endpoint(cast: Cast, alices: Alices) -> None:
    alice = client_for(cast.alice)
    url = reverse("webhook-status", args=[alices.endpoint.id])

    post(alice, url, {"status": "disabled"})
    alices.endpoint.refresh_from_db()
    assert alices.endpoint.status == "disabled"
    assert ">Enable<" in page(alice, reverse("webhook", args=[alices.endpoint.id]))

    post(alice, url, {"status": "enabled"})
    alices.endpoint.refresh_from_db()
    assert alices.endpoint.status == "enabled"
    assert [a.detail for a in audits(cast.alice_org, "webhook_endpoint.updated")] == [
        {"status": "enabled"},
        {"status": "disabled"},
    ]

    before = snapshot(cast.alice_org)
    post(alice, url, {"status": "deleted"})
    assert snapshot(cast.alice_org) == before


# --- test events and what the deliveries show -------------------------------------------


def test_a_test_event_goes_signed_to_that_endpoint_only_and_shows_as_succeeded(
    cast: Cast, receiver: Receiver
) -> None:
    endpoint = add_endpoint(cast.alice_org, receiver.url, events=("transfer.settled",))
    everything = add_endpoint(cast.alice_org, "https://all.example.test/hook")
    live = add_endpoint(cast.alice_org, "https://live.example.test/hook", livemode=True)
    alice = client_for(cast.alice)

    response = post(alice, reverse("webhook-test", args=[endpoint.id]))

    assert response.status_code == 302
    [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert not WebhookDelivery.objects.filter(endpoint__in=[everything, live]).exists()
    assert delivery.event.type == "webhook_endpoint.test"
    assert delivery.event.data["webhook_endpoint"] == endpoint.id
    [sent] = audits(cast.alice_org, "webhook_endpoint.test_sent")
    assert sent.detail == {"event": delivery.event_id}

    assert deliver() == 1

    [(headers, body)] = receiver.received
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "webhook_endpoint.test"
    assert payload["id"] == delivery.event_id == headers["webhook-id"]
    assert payload["data"]["webhook_endpoint"] == endpoint.id
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    listing = page(alice, reverse("webhook", args=[endpoint.id]))
    assert "Succeeded" in listing
    assert "<code>200</code>" in listing
    assert f"{floatformat(attempt.latency_ms, 0)} ms" in listing
    assert html.escape('{"received": true}') in listing


def test_a_receiver_answering_500_shows_the_delivery_retrying_and_its_escaped_answer(
    cast: Cast, receiver: Receiver
) -> None:
    receiver.answers = [500]
    receiver.body = b"<script>alert('owned')</script>"
    endpoint = add_endpoint(cast.alice_org, receiver.url)
    alice = client_for(cast.alice)
    post(alice, reverse("webhook-test", args=[endpoint.id]))

    deliver()

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and delivery.attempt_count == 1
    for url in [
        reverse("webhook", args=[endpoint.id]),
        reverse("webhook-delivery", args=[endpoint.id, delivery.id]),
    ]:
        content = page(alice, url)
        assert "<code>500</code>" in content
        assert "Retrying" in content and "next try" in content
        assert "<script>alert" not in content
        assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in content


def test_a_delivery_page_lists_every_attempt_and_the_payload_as_sent(
    cast: Cast, receiver: Receiver
) -> None:
    receiver.answers = [503, 200]
    endpoint = add_endpoint(cast.alice_org, receiver.url)
    webhooks.webhook_endpoint_test(endpoint=endpoint)
    with override_settings(WEBHOOK_TIME_SCALE=0.0001):  # the 5 s retry in half a millisecond
        deliver()
        time.sleep(0.01)
        deliver()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)

    content = page(
        client_for(cast.alice), reverse("webhook-delivery", args=[endpoint.id, delivery.id])
    )

    assert delivery.status == "succeeded"
    first, second = WebhookAttempt.objects.filter(delivery=delivery).order_by("attempted_at")
    assert content.index("<code>503</code>") < content.index("<code>200</code>")
    assert f"{floatformat(first.latency_ms, 1)} ms" in content
    assert f"{floatformat(second.latency_ms, 1)} ms" in content
    shown = re.search(r"Payload as sent</h2>\s*<pre>(.*?)</pre>", content, re.S)
    assert shown is not None
    [(_, sent_first), (_, sent_again)] = receiver.received
    assert (
        json.loads(html.unescape(shown.group(1)))
        == json.loads(sent_first)
        == json.loads(sent_again)
    )


def test_a_test_event_is_refused_for_a_disabled_endpoint(cast: Cast) -> None:
    endpoint = add_endpoint(cast.alice_org)
    webhooks.webhook_endpoint_update(endpoint=endpoint, status="disabled")

    response = post(
        client_for(cast.alice), reverse("webhook-test", args=[endpoint.id]), follow=True
    )

    assert "Enable the endpoint before sending it a test event." in response.content.decode()
    assert not Event.objects.exists()


def test_deliveries_are_listed_newest_first_fifty_to_a_page(cast: Cast) -> None:
    endpoint = add_endpoint(cast.alice_org)
    for _ in range(55):
        webhooks.webhook_endpoint_test(endpoint=endpoint)
    newest_first = list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("-id")
        .values_list("id", flat=True)
    )
    alice = client_for(cast.alice)
    url = reverse("webhook", args=[endpoint.id])

    first = page(alice, url)
    shown = re.findall(r"/deliveries/(whd_\w+)/", first)
    assert shown == newest_first[:50]
    older = re.search(r'href="\?before=(whd_\w+)"', first)
    assert older is not None and older.group(1) == newest_first[49]

    second = page(alice, f"{url}?before={older.group(1)}")
    assert re.findall(r"/deliveries/(whd_\w+)/", second) == newest_first[50:]
    assert 'href="?before=' not in second
    assert re.findall(r"/deliveries/(whd_\w+)/", page(alice, f"{url}?before=junk'")) == shown


# --- the signing secret -----------------------------------------------------------------


def test_revealing_the_secret_needs_the_password_and_a_wrong_one_counts_as_a_failed_login(
    cast: Cast, alices: Alices
) -> None:
    alice = client_for(cast.alice)
    url = reverse("webhook-reveal", args=[alices.endpoint.id])

    wrong = post(alice, url, {"password": "not-my-password-9"})

    assert wrong.status_code == 200
    assert wrong.context["reveal_form"].errors["password"] == ["That is not your password."]
    assert alices.endpoint.secret not in wrong.content.decode()
    [attempt] = AccessAttempt.objects.all()
    assert attempt.username == "alice" and attempt.failures_since_start == 1
    assert "not-my-password-9" not in attempt.post_data
    assert not audits(cast.alice_org, "webhook_endpoint.secret_revealed")

    empty = post(alice, url, {"password": ""})
    assert empty.context["reveal_form"].errors["password"] == ["This field is required."]

    right = post(alice, url, {"password": PASSWORD})

    assert alices.endpoint.secret in right.content.decode()
    assert "no-store" in right["Cache-Control"]
    [revealed] = audits(cast.alice_org, "webhook_endpoint.secret_revealed")
    assert revealed.target == alices.endpoint.id
    assert alices.endpoint.secret not in json.dumps(revealed.detail)
    assert alices.endpoint.secret not in page(alice, reverse("webhook", args=[alices.endpoint.id]))


def test_too_many_wrong_passwords_lock_the_reveal_even_for_the_right_one(
    cast: Cast, alices: Alices
) -> None:
    alice = client_for(cast.alice)
    url = reverse("webhook-reveal", args=[alices.endpoint.id])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = post(alice, url, {"password": "guess"})
        assert alices.endpoint.secret not in response.content.decode()
    assert response.status_code == 429  # django-axes' lockout page

    locked = post(alice, url, {"password": PASSWORD})

    assert alices.endpoint.secret not in locked.content.decode()
    assert locked.context["reveal_form"].errors["password"] == [
        "Too many wrong passwords. Try again later."
    ]
    assert not audits(cast.alice_org, "webhook_endpoint.secret_revealed")


def test_rotating_shows_the_new_secret_once_and_both_sign_during_the_grace(
    cast: Cast, receiver: Receiver
) -> None:
    endpoint = add_endpoint(cast.alice_org, receiver.url)
    old = endpoint.secret
    alice = client_for(cast.alice)
    url = reverse("webhook-rotate", args=[endpoint.id])

    refused = post(alice, url, {"password": "wrong-password-1"})
    assert refused.context["rotate_form"].errors["password"] == ["That is not your password."]
    endpoint.refresh_from_db()
    assert endpoint.secret == old

    rotated = post(alice, url, {"password": PASSWORD})

    endpoint.refresh_from_db()
    new = endpoint.secret
    assert new != old and endpoint.previous_secret == old
    assert endpoint.previous_secret_expires_at is not None
    grace = endpoint.previous_secret_expires_at - timezone.now()
    assert dt.timedelta(hours=23) < grace <= dt.timedelta(hours=24)
    shown = alice.get(rotated["Location"])
    assert new in shown.content.decode() and old not in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    assert new not in page(alice, rotated["Location"])
    [audit] = audits(cast.alice_org, "webhook_endpoint.secret_rotated")
    assert new not in json.dumps(audit.detail) and old not in json.dumps(audit.detail)

    post(alice, reverse("webhook-test", args=[endpoint.id]))
    deliver()

    [(headers, body)] = receiver.received
    assert len(headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(body, headers)["type"] == "webhook_endpoint.test"
    assert Webhook(new).verify(body, headers)["type"] == "webhook_endpoint.test"


# --- replay -----------------------------------------------------------------------------


def test_replaying_a_delivery_sends_the_event_again_as_a_new_attempt(
    cast: Cast, receiver: Receiver
) -> None:
    endpoint = add_endpoint(cast.alice_org, receiver.url)
    event = webhooks.webhook_endpoint_test(endpoint=endpoint)
    deliver()
    first = WebhookDelivery.objects.get(endpoint=endpoint)
    alice = client_for(cast.alice)

    response = post(
        alice, reverse("webhook-delivery-replay", args=[endpoint.id]), {"delivery": first.id}
    )

    assert response.status_code == 302
    replay = WebhookDelivery.objects.exclude(id=first.id).get()
    assert replay.event_id == event.id and replay.endpoint_id == endpoint.id
    assert deliver() == 1
    assert WebhookAttempt.objects.filter(delivery__event=event).count() == 2
    [(first_headers, _), (again_headers, _)] = receiver.received
    assert first_headers["webhook-id"] == again_headers["webhook-id"] == event.id
    listing = page(alice, reverse("webhook", args=[endpoint.id]))
    assert listing.count(f"<code>{event.id}</code>") == 2
    [audit] = audits(cast.alice_org, "webhook_endpoint.replayed")
    assert audit.detail == {"event": event.id, "delivery": replay.id}


def test_replay_since_sends_every_subscribed_event_since_then_again(cast: Cast) -> None:
    endpoint = add_endpoint(cast.alice_org)
    usd, other = payments.sandbox_open(holder=cast.alice_org.id, currencies=("USD", "USD"))
    payments.transfer_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=usd.id,
            destination_id=other.id,
            amount=700,
            currency="USD",
            settlement=Settlement.MANUAL,
        ),
    )
    # Another endpoint's test event is not this one's to receive, even though it takes "*".
    webhooks.webhook_endpoint_test(endpoint=add_endpoint(cast.alice_org, "https://b.example.test/"))
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    since = (timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    response = post(
        client_for(cast.alice),
        reverse("webhook-replay", args=[endpoint.id]),
        {"since": since},
        follow=True,
    )

    assert "1 event will be sent again." in response.content.decode()
    types = WebhookDelivery.objects.filter(endpoint=endpoint).values_list("event__type", flat=True)
    assert list(types) == ["transfer.created", "transfer.created"]
    [audit] = audits(cast.alice_org, "webhook_endpoint.replayed")
    assert audit.detail["deliveries"] == 1


@pytest.mark.parametrize("since", ["", "yesterday", "2999-01-01T00:00", "99999-01-01T00:00"])
def test_replay_since_a_bad_moment_is_shown_next_to_the_field(
    cast: Cast, alices: Alices, since: str
) -> None:
    before = snapshot(cast.alice_org)

    response = post(
        client_for(cast.alice),
        reverse("webhook-replay", args=[alices.endpoint.id]),
        {"since": since},
    )

    assert response.status_code == 200
    errors = response.context["replay_form"].errors["since"]
    assert errors and str(errors[0]) in html.unescape(response.content.decode())
    assert snapshot(cast.alice_org) == before


def test_replays_to_a_disabled_endpoint_are_refused(cast: Cast, alices: Alices) -> None:
    webhooks.webhook_endpoint_update(endpoint=alices.endpoint, status="disabled")
    before = snapshot(cast.alice_org)
    alice = client_for(cast.alice)

    post(alice, reverse("webhook-replay", args=[alices.endpoint.id]), {"since": "2020-01-01T00:00"})
    post(
        alice,
        reverse("webhook-delivery-replay", args=[alices.endpoint.id]),
        {"delivery": alices.delivery.id},
    )

    assert snapshot(cast.alice_org) == before


def test_redelivering_a_test_event_to_every_subscriber_reaches_only_its_endpoint(
    cast: Cast, alices: Alices
) -> None:
    add_endpoint(cast.alice_org, "https://all.example.test/hook")

    owed = webhooks.event_redeliver(event=alices.delivery.event)

    assert [delivery.endpoint_id for delivery in owed] == [alices.endpoint.id]


def test_an_endpoint_an_application_made_says_so(cast: Cast) -> None:
    from oauth import services as identity
    from oauth.models import Consent

    vendor = make_organization("Vendor Inc", owner=make_user("vendor"))
    issued = identity.application_create(
        organization=vendor, name="Budget Buddy", redirect_uris=["https://buddy.example/cb"]
    )
    consent = Consent.objects.create(
        user=cast.alice,
        application=issued.application,
        organization=cast.alice_org,
        scopes=["webhooks:manage"],
    )
    made = webhooks.webhook_endpoint_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        url="https://buddy.example/hooks",
        enabled_events=["*"],
        consent_id=consent.id,
    )
    own = add_endpoint(cast.alice_org)
    client = client_for(cast.alice)
    listing = page(client, reverse("webhooks"))
    assert listing.count("Made by Budget Buddy") == 1
    assert "Budget Buddy registered this endpoint with the access alice granted it" in page(
        client, reverse("webhook", args=[made.id])
    )
    assert "Budget Buddy" not in page(client, reverse("webhook", args=[own.id]))
    chinese = client.get(reverse("webhooks"), headers={"accept-language": "zh-hans"})
    assert "由 Budget Buddy 创建" in chinese.content.decode()
