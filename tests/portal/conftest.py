"""The portal's cast: alice owns Alice Ltd, bob is a viewer there, charlie owns another
organization and must see 404 for every one of Alice Ltd's things."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from oauth.models import Organization, Role, User
from payments import services as payments
from tests.factories import add_member, make_organization, make_user


@dataclass
class Cast:
    alice: User
    bob: User
    charlie: User
    alice_org: Organization
    charlie_org: Organization


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Argon2 is the product's hasher (tests/test_identity_models.py proves it); here it
    # would only make every sign-up and password check slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(db: None) -> Cast:
    alice, bob, charlie = make_user("alice"), make_user("bob"), make_user("charlie")
    alice_org = make_organization("Alice Ltd", owner=alice)
    add_member(alice_org, bob, Role.VIEWER)
    charlie_org = make_organization("Charlie Co", owner=charlie)
    payments.sandbox_open(holder=alice_org.id)
    payments.sandbox_open(holder=charlie_org.id)
    return Cast(alice, bob, charlie, alice_org, charlie_org)


def client_for(user: User) -> Client:
    """A browser signed in as `user`, with CSRF checks on as in production."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client: Client, page: str = "/") -> str:
    """The token a real form would carry, read from a page the way a browser gets it."""
    client.get(page)
    return client.cookies["csrftoken"].value


def post(
    client: Client, url: str, data: dict[str, Any] | None = None, *, follow: bool = False
) -> Any:
    """POST like a browser submitting a form: with the CSRF token."""
    payload = {"csrfmiddlewaretoken": csrf_token(client), **(data or {})}
    return client.post(url, payload, follow=follow)
