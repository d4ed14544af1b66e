"""The merchant admin's cast.

- alice owns Alice Ltd and is staff: she may look at everything of Alice Ltd and move
  its money. avery is staff and a viewer there: she looks, never acts. dev is staff and
  a developer there: he also sees the credentials.
- bob owns Bob Books and is staff: nothing of Alice Ltd may ever reach him, nor
  anything of his reach alice.
- root is a platform superuser; drifter is staff with no organization at all.

Every organization has the books of a new sandbox (USD and EUR test accounts, funded),
a USD payee account, a settled transfer with a description and metadata, a pending
manual one, the events of both (delivered to a webhook endpoint), an API key, an OAuth
application and an audit line. The admin asks for a verified authenticator
(ADMIN_REQUIRE_TWO_FACTOR on), so every client below carries one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from ledger import services as ledger
from ledger.models import Account, Entry, Settlement, Transfer
from oauth import services as identity
from oauth.models import APIKey, Application, AuditEntry, Organization, Role, User
from payments import services as payments
from payments import webhooks
from payments.models import Event, WebhookDelivery, WebhookEndpoint
from tests.factories import add_member, make_organization, make_user


@pytest.fixture(autouse=True)
def two_factor_required(settings: Any) -> None:
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    # Argon2 is slow on purpose; these tests sign in many people, none of them real.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Books:
    """One organization's rows, as the admin shows them."""

    organization: Organization
    usd: Account
    eur: Account
    payee: Account
    settled: Transfer
    pending: Transfer
    endpoint: WebhookEndpoint
    api_key: APIKey
    application: Application
    audit: AuditEntry

    def ids(self) -> list[str]:
        """Every id of this organization's rows that a page could show."""
        entries = Entry.objects.filter(account__holder=self.organization.id)
        events = Event.objects.filter(organization=self.organization)
        deliveries = WebhookDelivery.objects.filter(endpoint=self.endpoint)
        return [
            self.organization.id,
            self.usd.id,
            self.eur.id,
            self.payee.id,
            self.settled.id,
            self.pending.id,
            self.endpoint.id,
            self.api_key.id,
            self.application.id,
            self.application.client_id,
            self.audit.id,
            *entries.values_list("id", flat=True),
            *events.values_list("id", flat=True),
            *deliveries.values_list("id", flat=True),
        ]


def open_books(organization: Organization, owner: User, tag: str) -> Books:
    endpoint = webhooks.webhook_endpoint_create(
        organization_id=organization.id,
        livemode=False,
        url=f"http://127.0.0.1:9/{tag}",
        enabled_events=["*"],
    )
    usd, eur = payments.sandbox_open(holder=organization.id, currencies=("USD", "EUR"))
    payee = ledger.account_open(
        holder=organization.id, livemode=False, currency="USD", name="Payee"
    )
    settled = payments.transfer_create(
        organization_id=organization.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=usd.id,
            destination_id=payee.id,
            amount=2_550,
            currency="USD",
            settlement=Settlement.MANUAL,
            description=f"Invoice {tag}-42",
            metadata={"order": f"{tag}-order-1001"},
        ),
    )
    settled = payments.transfer_settle(
        organization_id=organization.id, transfer_id=settled.id, amount=None
    )
    pending = payments.transfer_create(
        organization_id=organization.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=usd.id,
            destination_id=payee.id,
            amount=700,
            currency="USD",
            settlement=Settlement.MANUAL,
            description=f"Deposit {tag}",
        ),
    )
    api_key = identity.api_key_create(
        organization=organization, livemode=False, name=f"{tag} server", created_by=owner
    ).api_key
    application = identity.application_create(
        organization=organization,
        name=f"{tag} budgeting",
        redirect_uris=["https://example.com/callback"],
        created_by=owner,
    ).application
    audit = identity.audit_record(
        action="api_key.created", actor=owner, organization_id=organization.id, target=api_key.id
    )
    for account in (usd, eur, payee):
        account.refresh_from_db()
    return Books(
        organization, usd, eur, payee, settled, pending, endpoint, api_key, application, audit
    )


@dataclass
class Cast:
    alice: User
    avery: User
    dev: User
    bob: User
    root: User
    drifter: User
    alice_books: Books
    bob_books: Books


@pytest.fixture
def cast(db: None) -> Cast:
    alice = make_user("alice", is_staff=True)
    avery = make_user("avery", is_staff=True)
    dev = make_user("dev", is_staff=True)
    bob = make_user("bob", is_staff=True)
    root = User.objects.create_superuser("root", "root@example.test", "a-long-root-password-42")
    drifter = make_user("drifter", is_staff=True)
    alice_org = make_organization("Alice Ltd", owner=alice)
    add_member(alice_org, avery, Role.VIEWER)
    add_member(alice_org, dev, Role.DEVELOPER)
    bob_org = make_organization("Bob Books", owner=bob)
    return Cast(
        alice,
        avery,
        dev,
        bob,
        root,
        drifter,
        open_books(alice_org, alice, "alice"),
        open_books(bob_org, bob, "bob"),
    )


def verified_client(user: User) -> Client:
    """A browser signed in as `user` who entered a right code from a confirmed
    authenticator (the session key django-otp sets at login), CSRF checks on."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def csrf_token(client: Client) -> str:
    """The token a real form would carry, read from a page the way a browser gets it."""
    if "csrftoken" not in client.cookies:
        client.get("/admin/")  # the log-out form of every signed-in page carries one
    if "csrftoken" not in client.cookies:
        client.get("/admin/login/")
    return client.cookies["csrftoken"].value


def post(client: Client, url: str, data: dict[str, Any] | None = None) -> Any:
    """POST like a browser submitting an admin form: with the CSRF token."""
    return client.post(url, {"csrfmiddlewaretoken": csrf_token(client), **(data or {})})


def text(response: Any) -> str:
    return str(response.content.decode())


def shows(page: str, row_id: str) -> bool:
    """Whether a page shows an id, as text or inside an admin URL (which escapes "_")."""
    return row_id in page or quote(row_id) in page


def changelist(model: str) -> str:
    return f"/admin/{model}/"


MODELS = [
    "ledger/account",
    "ledger/transfer",
    "ledger/entry",
    "payments/event",
    "payments/webhookendpoint",
    "payments/webhookdelivery",
    "oauth/apikey",
    "oauth/application",
    "oauth/organization",
    "oauth/membership",
    "oauth/auditentry",
]


def row_of(model: str, books: Books) -> str:
    """The id of one of the organization's rows shown by the admin page of `model`."""
    rows: dict[str, Any] = {
        "ledger/account": books.usd.id,
        "ledger/transfer": books.settled.id,
        "ledger/entry": Entry.objects.filter(account=books.usd).order_by("seq").first(),
        "payments/event": Event.objects.filter(organization=books.organization).first(),
        "payments/webhookendpoint": books.endpoint.id,
        "payments/webhookdelivery": WebhookDelivery.objects.filter(endpoint=books.endpoint).first(),
        "oauth/apikey": books.api_key.id,
        "oauth/application": books.application.id,
        "oauth/organization": books.organization.id,
        "oauth/membership": books.organization.memberships.first(),
        "oauth/auditentry": books.audit.id,
    }
    row = rows[model]
    return row if isinstance(row, str) else str(row.pk)
