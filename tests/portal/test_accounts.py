"""Signing up, verifying the e-mail address, logging in by username or e-mail, password
reset and change, and the lockout after repeated failures."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail, signing
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from developers import services
from developers.services import SIGNUP_MAILS_PER_HOUR
from developers.views.accounts import WELCOME_KEY
from ledger import selectors as books
from oauth import services as identity
from oauth.models import APIKey, AuditEntry, Membership, Organization, User
from tests.factories import PASSWORD
from tests.portal.conftest import Cast, client_for, post

NEW_PASSWORD = "a-brand-new-passphrase-77"
KEY_PATTERN = re.compile(r"sk_test_[A-Za-z0-9]{32}")


@pytest.fixture(autouse=True)
def quick_hashing(settings: Any) -> None:
    # Argon2's deliberate slowness, paid on every sign-up and login here, would only make
    # these tests slow; which hasher is used is not what they are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    # Per-address e-mail budgets live in the cache, which outlives a test's transaction.
    cache.clear()
    yield
    cache.clear()


def browser(ip: str = "198.51.100.7") -> Client:
    """A visitor who is not signed in, with CSRF checks on, from address `ip`."""
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=ip)


def submit(client: Client, url: str, data: dict[str, Any], *, page: str | None = None) -> Any:
    """Open the form's page (which sets the CSRF cookie) and submit it, like a browser."""
    client.get(page or url)
    token = client.cookies["csrftoken"].value
    return client.post(url, {"csrfmiddlewaretoken": token, **data})


def field_block(html: str, name: str) -> str:
    """The markup of one form field: its label, input, help and errors."""
    start = r'<div class="field[^"]*">(?:(?!<div class="field).)*?'
    end = r'.*?</div>\s*(?=<div class="field|<div class="actions|</form>)'
    match = re.search(rf'{start}id="id_{name}"{end}', html, re.S)
    assert match, f"no field {name} on the page"
    return match.group(0)


def errors_next_to(response: Any, name: str) -> str:
    block = field_block(response.content.decode(), name)
    assert f'<label for="id_{name}"' in block
    assert 'class="errorlist' in block, f"no error shown next to {name}"
    return block


def sign_up(
    client: Client,
    email: str = "dana@example.test",
    *,
    organization: str = "Dana Labs",
    password: str = PASSWORD,
    **extra: str,
) -> Any:
    data = {
        "name": "Dana Scully",
        "email": email,
        "organization_name": organization,
        "password": password,
        "accepted": "on",
        **extra,
    }
    return submit(client, "/signup/", data)


def link_in(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://[^/\s]+(/verify/\S+)", str(message.body))
    assert match, message.body
    return match.group(1)


def confirm(client: Client, link: str, organization: str = "Dana Labs") -> Any:
    return submit(client, link, {"organization_name": organization})


# Signing up ---------------------------------------------------------------------------


def test_sign_up_creates_an_inactive_user_and_mails_a_verification_link(db: None) -> None:
    client = browser()
    page = client.get("/signup/")
    for label in ("Your name", "E-mail", "Organization name", "Password", "I accept the terms"):
        assert label in page.content.decode()

    answer = sign_up(client)

    assert answer.status_code == 302 and answer.url == "/signup/sent/"
    assert "Check your inbox" in client.get(answer.url).content.decode()
    user = User.objects.get(email="dana@example.test")
    assert not user.is_active and user.first_name == "Dana Scully"
    assert user.check_password(PASSWORD)
    assert not Organization.objects.filter(members=user).exists()
    [message] = mail.outbox
    assert message.to == ["dana@example.test"]
    assert link_in(message).startswith("/verify/")


def test_the_link_opens_a_funded_sandbox_and_shows_one_test_key_once(db: None) -> None:
    client = browser()
    sign_up(client)
    link = link_in(mail.outbox[0])

    opened = client.get(link)
    assert opened.status_code == 200
    assert "dana@example.test" in opened.content.decode()
    assert 'value="Dana Labs"' in opened.content.decode(), "the name from the form, to confirm"
    assert not User.objects.get(email="dana@example.test").is_active, "opening alone does nothing"

    confirmed = confirm(client, link)

    assert confirmed.status_code == 302 and confirmed.url == "/welcome/"
    user = User.objects.get(email="dana@example.test")
    assert user.is_active
    [organization] = Organization.objects.filter(members=user)
    assert organization.name == "Dana Labs"
    assert Membership.objects.get(user=user, organization=organization).role == "owner"
    accounts = list(books.accounts_of(holder=organization.id, livemode=False))
    assert sorted(a.currency_id for a in accounts) == ["EUR", "USD"]
    assert all(a.available > 0 for a in accounts), "the sandbox is funded"
    [key] = APIKey.objects.filter(organization=organization)
    assert not key.livemode and not key.restricted and key.name == "First test key"

    welcome = client.get("/welcome/")
    assert welcome.status_code == 200
    assert "no-store" in welcome["Cache-Control"]
    shown = KEY_PATTERN.findall(welcome.content.decode())
    assert shown and set(shown) == {shown[0]}, "one key on the page"
    assert identity.api_key_authenticate(secret=shown[0]).id == key.id
    assert 'data-copy="#first-key"' in welcome.content.decode()
    for account in accounts:
        assert account.id in welcome.content.decode()
    assert 'href="/"' in welcome.content.decode(), "a way on to the dashboard"

    again = client.get("/welcome/")
    assert again.status_code == 200
    assert not KEY_PATTERN.search(again.content.decode()), "shown once"
    assert WELCOME_KEY not in client.session
    assert client.get("/").status_code == 200, "signed in"

    actions = set(
        AuditEntry.objects.filter(organization_id=organization.id).values_list("action", flat=True)
    )
    assert {"organization.created", "api_key.created"} <= actions
    for entry in AuditEntry.objects.all():
        assert shown[0] not in str(entry.detail)


def test_the_link_works_once(db: None) -> None:
    client = browser()
    sign_up(client)
    link = link_in(mail.outbox[0])
    confirm(client, link)

    other = browser("192.0.2.10")
    assert other.get(link).status_code == 400
    page = confirm(other, link, "A second org")
    assert page.status_code == 400
    assert "already used" in page.content.decode()
    assert Organization.objects.filter(members__email="dana@example.test").count() == 1
    assert APIKey.objects.count() == 1


def test_an_expired_link_is_refused(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    long_ago = int(time.time()) - settings.PASSWORD_RESET_TIMEOUT - 60
    with monkeypatch.context() as past:
        past.setattr(
            signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(long_ago)
        )
        sign_up(browser())
    link = link_in(mail.outbox[0])

    page = browser().get(link)

    assert page.status_code == 400
    assert "expired" in page.content.decode()
    assert 'href="/signup/resend"' in page.content.decode()
    assert not User.objects.get(email="dana@example.test").is_active


@pytest.mark.parametrize(
    "spoil",
    [
        lambda uid, token: (uid, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")),
        lambda uid, token: ("not-base64!", token),
        lambda uid, token: ("OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", token),
        lambda uid, token: (uid, "garbage"),
    ],
    ids=["tampered token", "bad uid", "huge uid", "garbage token"],
)
def test_a_bad_link_is_refused_with_a_clear_page(db: None, spoil: Any) -> None:
    sign_up(browser())
    _, _, uid, token = link_in(mail.outbox[0]).split("/", 3)
    uid, token = spoil(uid, token)

    page = browser().get(f"/verify/{uid}/{token}")

    assert page.status_code == 400
    assert "This link does not work" in page.content.decode()
    assert not User.objects.get(email="dana@example.test").is_active


def test_a_link_made_for_one_user_does_not_work_for_another(db: None) -> None:
    sign_up(browser())
    sign_up(browser(), "eve@example.test", organization="Eve Corp")
    _, _, dana_uid, _ = link_in(mail.outbox[0]).split("/", 3)
    _, _, _, eve_token = link_in(mail.outbox[1]).split("/", 3)

    assert browser().get(f"/verify/{dana_uid}/{eve_token}").status_code == 400


def test_signing_up_with_a_registered_address_reveals_nothing(cast: Cast) -> None:
    fresh = sign_up(browser(), "nobody@example.test")
    taken = sign_up(browser("192.0.2.20"), "ALICE@example.test", password=NEW_PASSWORD)

    assert (taken.status_code, taken.url) == (fresh.status_code, fresh.url)
    assert User.objects.filter(email__iexact="alice@example.test").count() == 1
    cast.alice.refresh_from_db()
    assert cast.alice.check_password(PASSWORD), "the password is not changed"
    warning = mail.outbox[1]
    assert warning.to == ["alice@example.test"]
    assert "already has one" in str(warning.body)
    assert "/verify/" not in str(warning.body)
    assert "/password-reset/" in str(warning.body)


def test_signing_up_again_before_verifying_replaces_the_first_link(db: None) -> None:
    sign_up(browser())
    sign_up(browser(), password=NEW_PASSWORD, organization="Dana Labs 2")
    first, second = (link_in(m) for m in mail.outbox)

    assert browser().get(first).status_code == 400
    client = browser()
    assert confirm(client, second, "Dana Labs 2").status_code == 302
    user = User.objects.get(email="dana@example.test")
    assert user.check_password(NEW_PASSWORD)
    assert [o.name for o in Organization.objects.filter(members=user)] == ["Dana Labs 2"]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (
            {"name": "", "email": "", "organization_name": "", "password": "", "accepted": ""},
            ["email", "organization_name", "password", "accepted"],
        ),
        ({"email": "not-an-address"}, ["email"]),
        ({"email": "x" * 5000 + "@example.test"}, ["email"]),
        ({"name": "n" * 5000, "organization_name": "o" * 5000}, ["name", "organization_name"]),
        ({"password": "password"}, ["password"]),
        ({"password": "12345678901234"}, ["password"]),
        ({"password": "dana@example.test"}, ["password"]),
        ({"password": "p" * 5000}, ["password"]),
        ({"accepted": ""}, ["accepted"]),
    ],
    ids=[
        "empty",
        "bad e-mail",
        "huge e-mail",
        "huge names",
        "common password",
        "numeric password",
        "password like the e-mail",
        "huge password",
        "terms not accepted",
    ],
)
def test_sign_up_shows_errors_next_to_the_fields_and_creates_nothing(
    db: None, data: dict[str, str], fields: list[str]
) -> None:
    good = {
        "name": "Dana",
        "email": "dana@example.test",
        "organization_name": "Dana Labs",
        "password": PASSWORD,
        "accepted": "on",
    }
    answer = submit(browser(), "/signup/", {k: v for k, v in {**good, **data}.items() if v})

    assert answer.status_code == 200
    for name in fields:
        errors_next_to(answer, name)
    assert not User.objects.exists()
    assert not mail.outbox


def test_sign_up_e_mails_to_one_address_are_limited(db: None) -> None:
    for _ in range(SIGNUP_MAILS_PER_HOUR):
        assert sign_up(browser()).status_code == 302

    refused = sign_up(browser())

    assert refused.status_code == 429
    assert "Too many e-mails" in errors_next_to(refused, "email")
    assert len(mail.outbox) == SIGNUP_MAILS_PER_HOUR


def test_someone_signed_in_is_sent_to_the_dashboard_from_sign_up(cast: Cast) -> None:
    answer = client_for(cast.alice).get("/signup/")
    assert answer.status_code == 302 and answer["Location"] == "/"


def test_the_welcome_page_shows_each_member_only_their_own_sandbox(cast: Cast) -> None:
    alice_accounts = [a.id for a in books.accounts_of(holder=cast.alice_org.id, livemode=False)]
    charlie_page = client_for(cast.charlie).get("/welcome/").content.decode()
    bob_page = client_for(cast.bob).get("/welcome/").content.decode()

    assert not any(account in charlie_page for account in alice_accounts)
    assert all(account in bob_page for account in alice_accounts)
    assert not KEY_PATTERN.search(bob_page)
    assert Client().get("/welcome/")["Location"].startswith("/login/")


# Resending the link ---------------------------------------------------------------------


def test_resend_mails_a_new_link_that_asks_for_the_organization_name(db: None) -> None:
    sign_up(browser())
    answer = submit(browser(), "/signup/resend", {"email": "DANA@example.test"})

    assert answer.status_code == 302 and answer.url == "/signup/sent/"
    link = link_in(mail.outbox[1])
    client = browser()
    page = client.get(link)
    assert 'value="Dana Labs"' not in page.content.decode()
    empty = confirm(client, link, "")
    assert empty.status_code == 200
    errors_next_to(empty, "organization_name")
    assert not User.objects.get(email="dana@example.test").is_active
    assert confirm(client, link, "Dana Again").status_code == 302
    assert Organization.objects.get(members__email="dana@example.test").name == "Dana Again"


def test_resend_says_the_same_for_unknown_and_verified_addresses_and_mails_nothing(
    cast: Cast,
) -> None:
    for email in ("nobody@example.test", "alice@example.test"):
        answer = submit(browser(), "/signup/resend", {"email": email})
        assert answer.status_code == 302 and answer.url == "/signup/sent/"
    assert not mail.outbox


def test_resend_is_limited_per_address_and_checks_its_input(db: None) -> None:
    sign_up(browser())
    for _ in range(SIGNUP_MAILS_PER_HOUR - 1):
        submit(browser(), "/signup/resend", {"email": "dana@example.test"})
    refused = submit(browser(), "/signup/resend", {"email": "dana@example.test"})
    assert refused.status_code == 429
    errors_next_to(refused, "email")
    assert len(mail.outbox) == SIGNUP_MAILS_PER_HOUR

    for bad in ("", "nope", "y" * 3000):
        answer = submit(browser(), "/signup/resend", {"email": bad})
        assert answer.status_code == 200
        errors_next_to(answer, "email")


# Logging in -----------------------------------------------------------------------------


def log_in(client: Client, username: str, password: str = PASSWORD, **extra: str) -> Any:
    return submit(client, "/login/", {"username": username, "password": password, **extra})


@pytest.mark.parametrize("login", ["alice", "alice@example.test", "ALICE@Example.TEST"])
def test_log_in_by_username_or_e_mail(cast: Cast, login: str) -> None:
    client = browser()
    answer = log_in(client, login, next="/welcome/")

    assert answer.status_code == 302 and answer.url == "/welcome/"
    assert client.session["_auth_user_id"] == str(cast.alice.pk)


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(cast: Cast) -> None:
    client = browser()
    for login in ("alice", "alice@example.test", "nobody@example.test"):
        answer = log_in(client, login, "wrong-password-123")
        assert answer.status_code == 200
        assert "username, e-mail or password is not right" in answer.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_unverified_user_is_told_to_verify_first_with_a_resend_link(db: None) -> None:
    sign_up(browser())

    right = log_in(browser(), "dana@example.test")
    wrong = log_in(browser(), "dana@example.test", "wrong-password-123")

    assert right.status_code == 200
    assert "Verify your e-mail address first" in right.content.decode()
    assert 'href="/signup/resend"' in right.content.decode()
    assert "Verify your e-mail" not in wrong.content.decode(), "only with the right password"
    assert 'href="/signup/resend"' not in wrong.content.decode()


def test_log_in_checks_its_input(cast: Cast) -> None:
    for data in ({"username": "", "password": ""}, {"username": "a" * 5000, "password": "x"}):
        answer = submit(browser(), "/login/", data)
        assert answer.status_code == 200
        assert "errorlist" in answer.content.decode()


def test_log_out_ends_the_session(cast: Cast) -> None:
    client = client_for(cast.alice)
    answer = post(client, "/logout/")
    assert answer.status_code == 302
    assert client.get("/").status_code == 302


# Lockout ------------------------------------------------------------------------------


def fail_five_times(client: Client, login: str = "alice") -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, login, "wrong-password-123")


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(cast: Cast) -> None:
    client = browser()
    fail_five_times(client)

    sixth = log_in(client, "alice", PASSWORD)

    assert sixth.status_code == 429
    assert "Too many failed attempts" in sixth.content.decode()
    assert "15 minutes" in sixth.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_by_e_mail_and_by_username_count_together(cast: Cast) -> None:
    client = browser()
    for login in ("alice@example.test", "alice", "ALICE@example.test", "alice", "alice"):
        log_in(client, login, "wrong-password-123")

    assert log_in(client, "alice@example.test").status_code == 429


def test_another_address_is_not_locked(cast: Cast) -> None:
    fail_five_times(browser("198.51.100.7"))

    elsewhere = browser("203.0.113.50")
    answer = log_in(elsewhere, "alice")

    assert answer.status_code == 302
    assert elsewhere.session["_auth_user_id"] == str(cast.alice.pk)


def test_after_the_cool_off_logging_in_works_again(cast: Cast) -> None:
    client = browser()
    fail_five_times(client)
    assert log_in(client, "alice").status_code == 429

    cool_off: dt.timedelta = settings.AXES_COOLOFF_TIME
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - dt.timedelta(seconds=1))

    assert log_in(client, "alice").status_code == 302


def test_the_lock_holds_for_an_unverified_account_too(db: None) -> None:
    sign_up(browser())
    client = browser()
    fail_five_times(client, "dana@example.test")

    locked = log_in(client, "dana@example.test")

    assert locked.status_code == 429
    assert "Verify your e-mail" not in locked.content.decode()


# Password reset -------------------------------------------------------------------------


def test_password_reset_round_trip(cast: Cast) -> None:
    client = browser()
    page = client.get("/password-reset/")
    assert page.status_code == 200 and '<label for="id_email"' in page.content.decode()

    sent = submit(client, "/password-reset/", {"email": "ALICE@example.test"})
    assert sent.status_code == 302 and sent.url == "/password-reset/sent/"
    assert "Check your inbox" in client.get(sent.url).content.decode()
    [message] = mail.outbox
    assert message.to == ["alice@example.test"]
    match = re.search(r"https?://[^/\s]+(/reset/\S+/)", str(message.body))
    assert match, message.body
    assert str(message.body).count(settings.PUBLIC_BASE_URL) == 1

    form_url = client.get(match.group(1))["Location"]
    answer = submit(
        client,
        form_url,
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert answer.status_code == 302 and answer.url == "/reset/done/"
    cast.alice.refresh_from_db()
    assert cast.alice.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in client.session, "not signed in by the link"
    entry = AuditEntry.objects.get(action="password.changed")
    assert entry.detail == {"via": "reset"} and entry.actor == "alice"
    assert entry.organization_id == cast.alice_org.id
    assert log_in(browser("192.0.2.30"), "alice", PASSWORD).status_code == 200
    assert log_in(browser("192.0.2.31"), "alice", NEW_PASSWORD).status_code == 302
    reused = browser().get(match.group(1), follow=True)
    assert "This link does not work" in reused.content.decode()


def test_password_reset_for_an_unknown_address_looks_the_same_and_mails_nothing(
    cast: Cast,
) -> None:
    answer = submit(browser(), "/password-reset/", {"email": "nobody@example.test"})
    assert answer.status_code == 302 and answer.url == "/password-reset/sent/"
    assert not mail.outbox


def test_password_reset_forms_show_errors_next_to_the_fields(cast: Cast) -> None:
    for bad in ("", "nope", "z" * 3000):
        answer = submit(browser(), "/password-reset/", {"email": bad})
        assert answer.status_code == 200
        errors_next_to(answer, "email")

    client = browser()
    submit(client, "/password-reset/", {"email": "alice@example.test"})
    match = re.search(r"(/reset/\S+/)", str(mail.outbox[0].body))
    assert match
    form_url = client.get(match.group(1))["Location"]
    for data, field in (
        ({"new_password1": NEW_PASSWORD, "new_password2": "something-else-99"}, "new_password2"),
        ({"new_password1": "short", "new_password2": "short"}, "new_password2"),
        ({"new_password1": "", "new_password2": ""}, "new_password1"),
    ):
        answer = submit(client, form_url, data)
        assert answer.status_code == 200
        errors_next_to(answer, field)
    cast.alice.refresh_from_db()
    assert cast.alice.check_password(PASSWORD)


# Password change ------------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_is_audited(cast: Cast) -> None:
    client = client_for(cast.alice)
    assert client.get("/account/password/").status_code == 200

    wrong = post(
        client,
        "/account/password/",
        {
            "old_password": "not-it-123",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 200
    errors_next_to(wrong, "old_password")
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1

    right = post(
        client,
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert right.status_code == 302 and right.url == "/account/password/done/"
    cast.alice.refresh_from_db()
    assert cast.alice.check_password(NEW_PASSWORD)
    assert client.get("/").status_code == 200, "this session carries on"
    entry = AuditEntry.objects.get(action="password.changed")
    assert entry.detail == {"via": "change"} and entry.organization_id == cast.alice_org.id
    assert NEW_PASSWORD not in str(entry.detail)


def test_change_password_shows_errors_next_to_the_fields(cast: Cast) -> None:
    client = client_for(cast.bob)
    for data, field in (
        ({"old_password": PASSWORD, "new_password1": "a", "new_password2": "b"}, "new_password2"),
        (
            {
                "old_password": PASSWORD,
                "new_password1": "1234567890",
                "new_password2": "1234567890",
            },
            "new_password2",
        ),
        ({"old_password": "", "new_password1": "", "new_password2": ""}, "old_password"),
    ):
        answer = post(client, "/account/password/", data)
        assert answer.status_code == 200
        errors_next_to(answer, field)
    cast.bob.refresh_from_db()
    assert cast.bob.check_password(PASSWORD)


def test_change_password_is_for_signed_in_people(db: None) -> None:
    assert Client().get("/account/password/")["Location"].startswith("/login/")


# CSRF -----------------------------------------------------------------------------------


def test_every_form_here_refuses_a_post_without_its_csrf_token(cast: Cast) -> None:
    sign_up(browser())
    link = link_in(mail.outbox[0])
    anonymous = {
        "/signup/": {
            "email": "x@example.test",
            "organization_name": "X",
            "password": PASSWORD,
            "accepted": "on",
        },
        "/signup/resend": {"email": "dana@example.test"},
        link: {"organization_name": "Dana Labs"},
        "/login/": {"username": "alice", "password": PASSWORD},
        "/password-reset/": {"email": "alice@example.test"},
    }
    for url, data in anonymous.items():
        assert browser().post(url, data).status_code == 403, url
    signed_in = client_for(cast.alice)
    answer = signed_in.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert answer.status_code == 403

    assert not User.objects.get(email="dana@example.test").is_active
    assert not User.objects.filter(email="x@example.test").exists()
    cast.alice.refresh_from_db()
    assert cast.alice.check_password(PASSWORD)
    assert len(mail.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_clicks_at_once_open_one_organization() -> None:
    sign_up(browser())
    user = User.objects.get(email="dana@example.test")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def click() -> None:
        try:
            start.wait(timeout=60)
            services.developer_signup_complete(
                user=user, organization_name="Dana Labs", ip_address=None
            )
            outcomes.append("opened")
        except services.SignupAlreadyCompleted:
            outcomes.append("refused")
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["opened", "refused"]
    assert Organization.objects.filter(members=user).count() == 1
    assert APIKey.objects.filter(organization__members=user).count() == 1
