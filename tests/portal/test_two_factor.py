"""Two-factor sign-in with an authenticator app: turning it on and off on the security
page, the two-step login, and wrong codes counting towards the lockout."""

from __future__ import annotations

import re
import time
from base64 import b32encode
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from developers.views.accounts import PENDING_LOGIN
from oauth.models import AuditEntry, User
from tests.factories import PASSWORD
from tests.portal.conftest import Cast, client_for, post
from tests.portal.test_accounts import browser, errors_next_to, fail_five_times, log_in, submit


@pytest.fixture(autouse=True)
def quick(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # django-otp makes each try wait after a wrong code (1 s, doubling); a test of that
    # back-off below puts it back.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """What the authenticator app shows now (or `steps_ahead` 30-second steps later;
    django-otp accepts one step of clock drift and never the same step twice)."""
    return f"{totp(device.bin_key, drift=steps_ahead):06d}"


def wrong(device: TOTPDevice) -> str:
    right = {code(device, steps_ahead=d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


def enrolled(user: User) -> TOTPDevice:
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return device


# Turning it on --------------------------------------------------------------------------


def test_turning_on_shows_a_qr_code_and_needs_a_right_code(cast: Cast) -> None:
    client = client_for(cast.alice)
    page = client.get("/account/security/")
    assert page.status_code == 200 and "Turn on two-factor sign-in" in page.content.decode()
    assert 'href="/account/password/"' in page.content.decode()

    started = post(client, "/account/security/two-factor/start")
    assert started.status_code == 302 and started.url == "/account/security/two-factor/"
    device = TOTPDevice.objects.get(user=cast.alice)
    assert not device.confirmed

    setup = client.get("/account/security/two-factor/").content.decode()
    assert re.search(r'<div class="qr" role="img" aria-label="[^"]+"><svg ', setup)
    assert "http" not in setup.split('<div class="qr"')[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", ""
    ), "drawn here, nothing fetched"
    secret = b32encode(device.bin_key).decode()
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in setup

    refused = post(client, "/account/security/two-factor/", {"code": wrong(device)})
    assert refused.status_code == 200
    assert "not right" in errors_next_to(refused, "code")
    device.refresh_from_db()
    assert not device.confirmed

    accepted = post(client, "/account/security/two-factor/", {"code": code(device)})

    assert accepted.status_code == 302 and accepted.url == "/account/security/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    entry = AuditEntry.objects.get(action="two_factor.enabled")
    assert entry.actor == "alice" and entry.organization_id == cast.alice_org.id
    assert device.key not in str(entry.detail) and secret not in str(entry.detail)
    assert "Turn off two-factor sign-in" in client.get("/account/security/").content.decode()


def test_the_set_up_code_is_checked(cast: Cast) -> None:
    client = client_for(cast.alice)
    post(client, "/account/security/two-factor/start")
    for bad in (
        "",
        "abcdef",
        "12345",
        "1234567",
        "9" * 5000,
        "\uff11\uff12\uff13\uff14\uff15\uff16",
    ):
        answer = post(client, "/account/security/two-factor/", {"code": bad})
        assert answer.status_code == 200
        errors_next_to(answer, "code")
    assert not TOTPDevice.objects.filter(user=cast.alice, confirmed=True).exists()


def test_spaces_in_the_code_are_ignored(cast: Cast) -> None:
    client = client_for(cast.alice)
    post(client, "/account/security/two-factor/start")
    device = TOTPDevice.objects.get(user=cast.alice)
    right = code(device)

    post(client, "/account/security/two-factor/", {"code": f" {right[:3]} {right[3:]} "})

    device.refresh_from_db()
    assert device.confirmed


def test_starting_again_replaces_an_unfinished_set_up(cast: Cast) -> None:
    client = client_for(cast.alice)
    post(client, "/account/security/two-factor/start")
    first = TOTPDevice.objects.get(user=cast.alice)
    post(client, "/account/security/two-factor/start")
    [second] = TOTPDevice.objects.filter(user=cast.alice)

    assert second.pk != first.pk and second.key != first.key


def test_once_on_it_cannot_be_started_again_over_the_top(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = client_for(cast.alice)

    post(client, "/account/security/two-factor/start")

    assert list(TOTPDevice.objects.filter(user=cast.alice)) == [device]
    assert client.get("/account/security/two-factor/").status_code == 302


def test_django_otp_makes_you_wait_after_a_wrong_code(cast: Cast, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    client = client_for(cast.alice)
    post(client, "/account/security/two-factor/start")
    device = TOTPDevice.objects.get(user=cast.alice)
    post(client, "/account/security/two-factor/", {"code": wrong(device)})

    at_once = post(client, "/account/security/two-factor/", {"code": code(device)})

    assert "Wait a few seconds" in errors_next_to(at_once, "code")
    device.refresh_from_db()
    assert not device.confirmed


# Logging in with it ---------------------------------------------------------------------


def test_login_takes_two_steps_and_signs_in_only_after_the_code(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = browser()

    first = log_in(client, "alice@example.test", next="/account/security/")

    assert first.status_code == 302 and first.url == "/login/verify/"
    assert "_auth_user_id" not in client.session, "not signed in yet"
    assert client.get("/").status_code == 302
    page = client.get("/login/verify/")
    assert page.status_code == 200 and '<label for="id_code"' in page.content.decode()

    second = submit(client, "/login/verify/", {"code": code(device)})

    assert second.status_code == 302 and second.url == "/account/security/"
    assert client.session["_auth_user_id"] == str(cast.alice.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert PENDING_LOGIN not in client.session
    assert client.get("/").status_code == 200


def test_a_wrong_code_is_refused_next_to_the_field(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = browser()
    log_in(client, "alice")

    for bad in (wrong(device), "", "12ab56", "7" * 3000):
        answer = submit(client, "/login/verify/", {"code": bad})
        assert answer.status_code == 200
        errors_next_to(answer, "code")
    assert "_auth_user_id" not in client.session


def test_wrong_codes_lock_the_account_out(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = browser()
    log_in(client, "alice")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        submit(client, "/login/verify/", {"code": wrong(device)})
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 4

    locked = submit(client, "/login/verify/", {"code": wrong(device)})

    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert PENDING_LOGIN not in client.session, "back to the password, after the cool-off"
    assert log_in(client, "alice").status_code == 429, "even the right password"
    assert "_auth_user_id" not in client.session


def test_a_locked_account_cannot_finish_with_a_right_code(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = browser()
    log_in(client, "alice")
    # Someone at the same address fails five passwords while the code page is open.
    fail_five_times(browser())

    answer = submit(client, "/login/verify/", {"code": code(device)})

    assert answer.status_code == 429
    assert "_auth_user_id" not in client.session
    device.refresh_from_db()
    assert device.last_t == -1, "the code was not even tried"


def test_the_code_step_expires(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = browser()
    log_in(client, "alice")
    session = client.session
    session[PENDING_LOGIN] = {**session[PENDING_LOGIN], "expires": time.time() - 1}
    session.save()

    answer = submit(client, "/login/verify/", {"code": code(device)}, page="/login/")

    assert answer.status_code == 302 and answer.url == "/login/"
    assert "_auth_user_id" not in client.session


def test_the_code_page_without_a_password_first_goes_to_login(db: None) -> None:
    answer = Client().get("/login/verify/")
    assert answer.status_code == 302 and answer["Location"] == "/login/"


def test_people_without_two_factor_log_in_in_one_step(cast: Cast) -> None:
    enrolled(cast.alice)
    client = browser()
    answer = log_in(client, "bob")
    assert answer.status_code == 302 and answer.url == "/"
    assert client.session["_auth_user_id"] == str(cast.bob.pk)


# Turning it off -------------------------------------------------------------------------


def test_turning_off_needs_the_password_and_a_current_code(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = client_for(cast.alice)
    url = "/account/security/two-factor/disable"

    bad_password = post(client, url, {"password": "not-it-123", "code": code(device)})
    assert bad_password.status_code == 200
    assert "not right" in errors_next_to(bad_password, "password")
    bad_code = post(client, url, {"password": PASSWORD, "code": wrong(device)})
    assert "not right" in errors_next_to(bad_code, "code")
    empty = post(client, url, {"password": "", "code": ""})
    errors_next_to(empty, "password")
    errors_next_to(empty, "code")
    assert TOTPDevice.objects.filter(user=cast.alice, confirmed=True).exists()
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 2

    done = post(client, url, {"password": PASSWORD, "code": code(device, steps_ahead=1)})

    assert done.status_code == 302 and done.url == "/account/security/"
    assert not TOTPDevice.objects.filter(user=cast.alice).exists()
    entry = AuditEntry.objects.get(action="two_factor.disabled")
    assert entry.actor == "alice" and entry.organization_id == cast.alice_org.id
    assert PASSWORD not in str(entry.detail)
    assert log_in(browser(), "alice").url == "/", "one step again"


def test_wrong_tries_at_turning_off_lock_out_too(cast: Cast) -> None:
    device = enrolled(cast.alice)
    client = client_for(cast.alice)
    url = "/account/security/two-factor/disable"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post(client, url, {"password": "not-it-123", "code": code(device)})

    locked = post(client, url, {"password": "not-it-123", "code": code(device)})
    after = post(client, url, {"password": PASSWORD, "code": code(device)})

    assert locked.status_code == 429 and after.status_code == 429
    assert TOTPDevice.objects.filter(user=cast.alice, confirmed=True).exists()


# Who may see what -----------------------------------------------------------------------


def test_each_person_manages_only_their_own_two_factor(cast: Cast) -> None:
    alice_device = enrolled(cast.alice)

    charlie = client_for(cast.charlie)
    assert "Turn on two-factor sign-in" in charlie.get("/account/security/").content.decode()
    post(
        charlie,
        "/account/security/two-factor/disable",
        {"password": PASSWORD, "code": code(alice_device)},
    )
    assert TOTPDevice.objects.filter(pk=alice_device.pk).exists()

    # Security is the person's own, not the organization's: a viewer turns it on too.
    bob = client_for(cast.bob)
    post(bob, "/account/security/two-factor/start")
    bob_device = TOTPDevice.objects.get(user=cast.bob)
    post(bob, "/account/security/two-factor/", {"code": code(bob_device)})
    bob_device.refresh_from_db()
    assert bob_device.confirmed
    alice_device.refresh_from_db()
    assert alice_device.confirmed


def test_anonymous_visitors_are_sent_to_login(db: None) -> None:
    for url in (
        "/account/security/",
        "/account/security/two-factor/",
        "/account/password/",
    ):
        answer = Client().get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/?next="), url
    answer = Client().post("/account/security/two-factor/start")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert not TOTPDevice.objects.exists()


def test_state_changes_only_on_post(cast: Cast) -> None:
    client = client_for(cast.alice)
    assert client.get("/account/security/two-factor/start").status_code == 405
    assert client.get("/account/security/two-factor/disable").status_code == 405
    assert not TOTPDevice.objects.exists()


def test_every_form_here_refuses_a_post_without_its_csrf_token(cast: Cast) -> None:
    client = client_for(cast.alice)
    assert client.post("/account/security/two-factor/start").status_code == 403
    assert not TOTPDevice.objects.exists()

    post(client, "/account/security/two-factor/start")
    device = TOTPDevice.objects.get(user=cast.alice)
    assert client.post("/account/security/two-factor/", {"code": code(device)}).status_code == 403
    device.refresh_from_db()
    assert not device.confirmed

    device.confirmed = True
    device.save()
    answer = client.post(
        "/account/security/two-factor/disable", {"password": PASSWORD, "code": code(device)}
    )
    assert answer.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    pending = browser()
    log_in(pending, "alice")
    assert pending.post("/login/verify/", {"code": code(device)}).status_code == 403
    assert "_auth_user_id" not in pending.session
