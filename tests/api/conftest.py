"""The public /v1 API, called the way a client calls it.

Who is who (the access matrix):

- alice owns organization A. She has a test-mode secret key (`alice.secret`), a
  restricted key that may only read (`restricted_key`), and three test-mode accounts:
  USD and EUR, each funded with 1,000,000 minor units by the sandbox, and an empty USD
  `payee` account to send money to.
- bob is a `viewer` member of A; `bob_key` is a restricted key he created for A.
- charlie owns organization B, with his own secret key and accounts of the same shape.

Every response the `api` client receives is checked against the OpenAPI schema served
at /api/schema/ (operation, status, content type, body), carries a `Request-Id`, and, for
a status >= 400, is application/problem+json with the fields the contract names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from oauth import services as identity
from oauth.models import Role, Scope, User
from tests.api.support import READ_SCOPES, Api, OpenApi, Party, make_party, make_user


@pytest.fixture(scope="session")
def openapi(django_db_blocker: Any) -> OpenApi:
    """Loaded once per run, from the URL clients load it from."""
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return OpenApi(json.loads(response.content))


@pytest.fixture(autouse=True)
def generous_rate_limits(settings: Any) -> None:
    """A fast suite sends hundreds of requests a second from one address; the rate
    limit tests set their own limits."""
    settings.API_RATE_LIMIT = 1_000_000
    settings.API_IP_RATE_LIMIT = 1_000_000


@pytest.fixture
def alice(db: None) -> Party:
    return make_party("alice")


@pytest.fixture
def restricted_key(alice: Party) -> str:
    """alice's restricted key: it may read accounts, transactions and transfers, no more."""
    return identity.api_key_create(
        organization=alice.organization, livemode=False, scopes=READ_SCOPES, created_by=alice.user
    ).secret


@pytest.fixture
def bob(alice: Party) -> User:
    bob = make_user("bob")
    identity.membership_set(organization=alice.organization, user=bob, role=Role.VIEWER)
    return bob


@pytest.fixture
def bob_key(alice: Party, bob: User) -> str:
    """A restricted key bob created for organization A (reads transfers only)."""
    return identity.api_key_create(
        organization=alice.organization,
        livemode=False,
        scopes=[Scope.TRANSFERS_READ],
        name="bob's dashboard",
        created_by=bob,
    ).secret


@pytest.fixture
def charlie(db: None) -> Party:
    return make_party("charlie")


@pytest.fixture
def alice_live_key(alice: Party) -> str:
    return identity.api_key_create(
        organization=alice.organization, livemode=True, created_by=alice.user
    ).secret


@pytest.fixture
def api(openapi: OpenApi, alice: Party) -> Api:
    """A client speaking with alice's test-mode secret key."""
    return Api(openapi, alice.secret)


@pytest.fixture
def anonymous(openapi: OpenApi, db: None) -> Api:
    return Api(openapi, None)
