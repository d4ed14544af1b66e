"""The demo world: a merchant and a customer, with their users and an OAuth client.

Running it again finds what exists and changes nothing but the secrets, which are
stored only as hashes and so must be minted afresh to be printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from ledger import selectors as books
from oauth import services as identity
from oauth.models import APIKey, Application, Membership, Organization, Role, User
from payments import services as payments

DEMO_PASSWORD = "openpay-demo-2026"  # noqa: S105 -- demo only; seed_demo refuses production
OAUTH_REDIRECT_URI = "http://127.0.0.1:8765/callback"


@dataclass(frozen=True)
class DemoOrganization:
    key: str
    name: str
    owner: str

    currencies: tuple[str, ...]


MERCHANT = DemoOrganization(
    key="merchant", name="Acme Supplies", owner="merchant", currencies=("USD", "EUR")
)
CUSTOMER = DemoOrganization(
    key="customer", name="Globex Household", owner="customer", currencies=("USD", "GBP")
)
MERCHANT_STAFF = "merchant-staff"


@transaction.atomic
def seed_demo() -> dict[str, Any]:
    organizations = {demo.key: _organization(demo) for demo in (MERCHANT, CUSTOMER)}
    merchant = organizations[MERCHANT.key]
    staff = _user(MERCHANT_STAFF, is_staff=True)
    identity.membership_set(organization=merchant, user=staff, role=Role.ADMIN)
    application, client_secret = _oauth_client(merchant)

    users = []
    for username, organization in (
        (MERCHANT.owner, merchant),
        (CUSTOMER.owner, organizations[CUSTOMER.key]),
        (MERCHANT_STAFF, merchant),
    ):
        membership = Membership.objects.select_related("user").get(
            user__username=username, organization=organization
        )
        users.append(
            {
                "username": username,
                "password": DEMO_PASSWORD,
                "organization": organization.id,
                "role": membership.role,
                "is_staff": membership.user.is_staff,
            }
        )
    return {
        "base_url": settings.PUBLIC_BASE_URL,
        "organizations": [
            {
                "id": org.id,
                "name": org.name,
                "test_secret_key": _test_secret_key(org),
                "accounts": [
                    {"id": account.id, "currency": account.currency_id}
                    for account in books.accounts_of(holder=org.id, livemode=False).order_by("id")
                ],
            }
            for org in organizations.values()
        ],
        "oauth_client": {
            "client_id": application.client_id,
            "client_secret": client_secret,
            "redirect_uri": OAUTH_REDIRECT_URI,
        },
        "users": users,
    }


def _user(username: str, *, is_staff: bool = False) -> User:
    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.openpay.test"}
    )
    # Reset each run, so the printed password is always the one that works.
    user.set_password(DEMO_PASSWORD)
    user.is_staff = is_staff
    user.save(update_fields=["password", "is_staff"])
    return user


def _organization(demo: DemoOrganization) -> Organization:
    owner = _user(demo.owner)
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=owner, role=Role.OWNER, organization__name=demo.name)
        .first()
    )
    if membership:
        organization = membership.organization
    else:
        organization = identity.organization_create(name=demo.name, owner=owner)
    if not books.accounts_of(holder=organization.id, livemode=False).exists():
        payments.sandbox_open(holder=organization.id, currencies=demo.currencies)
    return organization


def _test_secret_key(organization: Organization) -> str:
    """Keys are stored hashed, so each run mints a fresh demo key (and retires the
    previous demo key, so demo keys do not pile up)."""
    name = "Demo key (seed_demo)"
    for old in APIKey.objects.filter(organization=organization, name=name, revoked_at=None):
        identity.api_key_revoke(api_key=old)
    return identity.api_key_create(organization=organization, livemode=False, name=name).secret


def _oauth_client(merchant: Organization) -> tuple[Application, str]:
    name = "Acme Budgeting (demo third party)"
    application = Application.objects.filter(organization=merchant, name=name).first()
    if application is None:
        issued = identity.application_create(
            organization=merchant,
            name=name,
            redirect_uris=[OAUTH_REDIRECT_URI],
            description="A demo third-party app that reads balances with the user's consent.",
        )
        return issued.application, issued.client_secret
    return application, identity.application_rotate_secret(application=application)
