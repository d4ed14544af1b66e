"""Entering the admin takes the password and a code from a confirmed authenticator
(ADMIN_REQUIRE_TWO_FACTOR, on in production and in these tests), and repeated failures,
of either, lock the username and address out."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.env import ConfigError
from developers.demo import seed_demo
from oauth.models import User
from tests.admin.conftest import Cast, text
from tests.factories import PASSWORD
from tests.test_settings import PRODUCTION, load

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def sign_in(client: Client, user: User, password: str = PASSWORD, **otp: str) -> Any:
    client.get(LOGIN)
    return client.post(
        LOGIN, {"username": user.username, "password": password, "next": "/admin/", **otp}
    )


def inside(client: Client) -> bool:
    return bool(client.get("/admin/").status_code == 200)


def test_the_login_page_asks_for_the_code_and_says_where_to_get_an_authenticator(
    cast: Cast,
) -> None:
    page = text(Client().get(LOGIN))
    assert 'name="otp_token"' in page
    assert "authenticator app" in page and "/account/security/" in page


def test_staff_without_an_authenticator_cannot_enter(cast: Cast) -> None:
    client = Client()
    response = sign_in(client, cast.alice)
    assert response.status_code == 200
    assert "errornote" in text(response)
    assert not inside(client)
    response = sign_in(client, cast.alice, otp_token="123456")
    assert response.status_code == 200
    assert not inside(client)


def test_a_session_without_a_verified_authenticator_is_sent_to_the_login_page(
    cast: Cast,
) -> None:
    TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    client = Client()
    client.force_login(cast.alice)  # the portal's password login, say
    response = client.get("/admin/ledger/transfer/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_the_password_and_a_right_code_open_the_admin(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    client = Client()
    response = sign_in(client, cast.alice, otp_token=code(device))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert inside(client)
    assert "Alice Ltd" in text(client.get("/admin/"))


def test_a_wrong_code_is_refused(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    client = Client()
    response = sign_in(client, cast.alice, otp_token=wrong)
    assert response.status_code == 200
    assert not inside(client)


def test_an_unconfirmed_authenticator_does_not_open_the_admin(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=False)
    client = Client()
    sign_in(client, cast.alice, otp_token=code(device))
    assert not inside(client)


def test_a_member_who_is_not_staff_cannot_enter_even_with_a_right_code(cast: Cast) -> None:
    User.objects.filter(pk=cast.avery.pk).update(is_staff=False)
    device = TOTPDevice.objects.create(user=cast.avery, name="phone", confirmed=True)
    client = Client()
    sign_in(client, cast.avery, otp_token=code(device))
    assert not inside(client)


def test_with_two_factor_off_the_password_is_enough(cast: Cast, settings: Any) -> None:
    settings.ADMIN_REQUIRE_TWO_FACTOR = False
    client = Client()
    assert "Two-factor sign-in is off" in text(client.get(LOGIN))
    response = sign_in(client, cast.alice)
    assert response.status_code == 302
    assert inside(client)


# Lockout -----------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_admin_login_even_for_the_right_one(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    client = Client()
    for _ in range(5):
        assert sign_in(client, cast.alice, password="not-the-password").status_code in (200, 429)
    locked = sign_in(client, cast.alice, otp_token=code(device))
    assert locked.status_code == 429
    assert not inside(client)


def test_five_wrong_codes_lock_the_admin_login_too(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    client = Client()
    right = code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert sign_in(client, cast.alice, otp_token=wrong).status_code in (200, 429)
    locked = sign_in(client, cast.alice, otp_token=right)
    assert locked.status_code == 429
    assert not inside(client)


def test_the_lockout_is_per_address(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.alice, name="phone", confirmed=True)
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        sign_in(elsewhere, cast.alice, password="not-the-password")
    client = Client()
    assert sign_in(client, cast.alice, otp_token=code(device)).status_code == 302
    assert inside(client)


# The setting ---------------------------------------------------------------------------------


def test_production_requires_two_factor_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_REQUIRE_TWO_FACTOR", raising=False)
    assert load(monkeypatch, **PRODUCTION)["ADMIN_REQUIRE_TWO_FACTOR"] is True


def test_production_refuses_to_start_with_two_factor_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as refused:
        load(monkeypatch, **PRODUCTION, ADMIN_REQUIRE_TWO_FACTOR="false")
    assert refused.value.name == "ADMIN_REQUIRE_TWO_FACTOR"


def test_development_lets_the_demo_staff_in_with_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADMIN_REQUIRE_TWO_FACTOR", raising=False)
    assert load(monkeypatch)["ADMIN_REQUIRE_TWO_FACTOR"] is False


def test_the_seeded_staff_user_logs_in_with_the_printed_password_in_development(
    db: None, settings: Any
) -> None:
    settings.ADMIN_REQUIRE_TWO_FACTOR = False
    world = seed_demo()
    [staff] = [user for user in world["users"] if user["is_staff"]]
    client = Client()
    client.get(LOGIN)
    response = client.post(
        LOGIN, {"username": staff["username"], "password": staff["password"], "next": "/admin/"}
    )
    assert response.status_code == 302
    home = text(client.get("/admin/"))
    assert "Acme Supplies" in home and "Balances" in home
