"""API2, broken authentication: every operation refuses a missing, revoked, expired or
smuggled credential before it reads anything, and the portal's and the admin's log-in
pages lock a username out of an address after five wrong passwords."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from oauth import services as identity
from oauth.models import APIKey, Role, User
from tests.api.support import Party, problem
from tests.attacks.support import (
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    client,
    path_for,
    snapshot,
)
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()


def attempt(api: Api, operation: Operation, objects: Objects, **kw: Any) -> Any:
    """The owner's own request (see test_baseline.py), sent with `api`'s credential."""
    before = snapshot()
    response = api.request(
        operation.method, path_for(operation, objects), body_for(operation, objects).value, **kw
    )
    assert snapshot() == before, changes(before, snapshot())
    return response


def refused_with(response: Any, code: str) -> None:
    assert problem(response) == (401, code, None)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_no_credential(api: Api, alices: Objects, operation: Operation) -> None:
    refused_with(attempt(api.using(None), operation, alices), "authentication_required")


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_revoked_key(api: Api, alice: Party, alices: Objects, operation: Operation) -> None:
    # A fresh instance: the world's own was revoked, in memory, by an earlier test.
    identity.api_key_revoke(api_key=APIKey.objects.get(id=alice.key.id))
    refused_with(attempt(api, operation, alices), "invalid_api_key")


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_an_expired_key(api: Api, alice: Party, alices: Objects, operation: Operation) -> None:
    APIKey.objects.filter(id=alice.key.id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    refused_with(attempt(api, operation, alices), "api_key_expired")


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_key_rotated_without_grace(
    api: Api, alice: Party, alices: Objects, operation: Operation
) -> None:
    identity.api_key_rotate(api_key=APIKey.objects.get(id=alice.key.id), grace=dt.timedelta(0))
    refused_with(attempt(api, operation, alices), "api_key_expired")


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_key_one_character_off(
    api: Api, alice: Party, alices: Objects, operation: Operation
) -> None:
    forged = alice.secret[:-1] + ("A" if alice.secret[-1] != "A" else "B")
    refused_with(attempt(api.using(forged), operation, alices), "invalid_api_key")


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_key_in_the_query_string(
    api: Api, alice: Party, alices: Objects, operation: Operation
) -> None:
    """Even beside a good header: a key in a URL ends up in logs and proxies."""
    refused_with(
        attempt(api, operation, alices, query={"api_key": alice.secret}), "credential_in_query"
    )


# Guessing passwords ---------------------------------------------------------------------

WRONG = "not-the-password-1"
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def quick_hashing(settings: Any) -> None:
    # Argon2's cost is not what these attacks are about; each one logs in a dozen times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def victim(alice: Party) -> User:
    """A staff member of alice's organization, who may use the portal and the admin."""
    user = make_user("victim", is_staff=True)
    identity.membership_set(organization=alice.organization, user=user, role=Role.ADMIN)
    return user


def browser(address: str = ATTACKER, **headers: str) -> Client:
    return client(enforce_csrf_checks=True, REMOTE_ADDR=address, headers=headers)


def log_in(client: Client, page: str, username: str, password: str, **extra: str) -> Any:
    """Submit the log-in form of `page` like a browser: CSRF cookie first, then the form."""
    client.get(page)
    token = client.cookies["csrftoken"].value
    return client.post(
        page,
        {"csrfmiddlewaretoken": token, "username": username, "password": password, **extra},
    )


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


LOGIN_PAGES = ["/login/", "/admin/login/"]


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_right_password_is_refused_after_five_wrong_ones(page: str, victim: User) -> None:
    attacker = browser()
    answers = [log_in(attacker, page, "victim", WRONG) for _ in range(settings.AXES_FAILURE_LIMIT)]
    # The fifth failure is the one that locks: it already answers with the lock page.
    assert [a.status_code for a in answers] == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert not signed_in(attacker)

    sixth = log_in(attacker, page, "victim", PASSWORD)

    assert sixth.status_code == 429
    assert "Too many failed attempts" in sixth.content.decode()
    assert not signed_in(attacker)
    fresh = browser()  # new cookies, same address
    assert log_in(fresh, page, "victim", PASSWORD).status_code == 429
    assert not signed_in(fresh)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_forged_forwarded_for_header_does_not_reset_the_count(page: str, victim: User) -> None:
    """The lock is on the address the connection came from, not one the client claims."""
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(browser(X_Forwarded_For=f"198.51.100.{n}"), page, "victim", WRONG)

    spoofed = browser(X_Forwarded_For="198.51.100.200")
    assert log_in(spoofed, page, "victim", PASSWORD).status_code == 429
    assert not signed_in(spoofed)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_lock_is_per_address_so_a_victim_elsewhere_still_logs_in(
    page: str, victim: User
) -> None:
    """Locking the username alone would let anyone lock a victim out from anywhere."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(browser(), page, "victim", WRONG)

    at_home = browser("198.51.100.10")
    assert log_in(at_home, page, "victim", PASSWORD).status_code == 302
    assert signed_in(at_home)


def test_wrong_codes_lock_the_admin_even_with_the_right_password_and_code(
    settings: Any, victim: User
) -> None:
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = TOTPDevice.objects.create(user=victim, name="phone", confirmed=True)
    right = {f"{totp(device.bin_key, drift=d):06d}" for d in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in right)
    attacker = browser()
    answers = [
        log_in(attacker, "/admin/login/", "victim", PASSWORD, otp_token=wrong)
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert [a.status_code for a in answers] == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert not signed_in(attacker)

    sixth = log_in(
        attacker, "/admin/login/", "victim", PASSWORD, otp_token=f"{totp(device.bin_key):06d}"
    )

    assert sixth.status_code == 429
    assert not signed_in(attacker)
