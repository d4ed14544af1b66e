"""The portal's own writes: signing up (the inactive user, the e-mail, and on the click
the organization with its sandbox and first key), and a person's sign-in security
(two-factor devices, password changes), each with its audit line in the same
transaction."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django_otp.plugins.otp_totp.models import TOTPDevice

from developers.tokens import signup_link_url
from ledger.models import Account
from oauth import services as identity
from oauth.models import Organization, User
from payments import services as payments

FIRST_KEY_NAME = "First test key"
# Sign-up and resend e-mails per address per hour, whoever asks: a form anyone may
# submit must not become a way to fill someone's inbox.
SIGNUP_MAILS_PER_HOUR = 5
USERNAME_PATTERN = re.compile(r"^[\w.@+-]{1,150}\Z")


class SignupAlreadyCompleted(ValueError):
    pass


@dataclass(frozen=True)
class Welcome:
    user: User
    organization: Organization
    accounts: list[Account]
    # Shown once, on the welcome page: only its HMAC is stored.
    api_key: identity.IssuedKey


def signup_mail_allowed(*, email: str) -> bool:
    """Counts one e-mail to `email` and says whether it is within the hourly budget."""
    key = "signup-mail:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()
    cache.add(key, 0, timeout=3600)
    try:
        sent = cache.incr(key)
    except ValueError:
        # The counter expired between add and incr.
        cache.set(key, 1, timeout=3600)
        sent = 1
    return sent <= SIGNUP_MAILS_PER_HOUR


def _username_for(email: str) -> str:
    """People sign in with their e-mail; the username only has to be unique and valid,
    so it is the e-mail itself when that fits."""
    if USERNAME_PATTERN.match(email) and not User.objects.filter(username=email).exists():
        return email
    return f"dev-{secrets.token_hex(6)}"


def _mail(*, template: str, to: str, context: dict[str, object]) -> None:
    subject = "".join(render_to_string(f"{template}_subject.txt", context).splitlines())
    body = render_to_string(f"{template}.txt", context)
    send_mail(subject, body, None, [to])


def _context(user: User) -> dict[str, object]:
    return {"user": user, "base_url": settings.PUBLIC_BASE_URL}


def _send_verification(*, user: User, organization_name: str) -> None:
    _mail(
        template="registration/signup_email",
        to=user.email,
        context={
            **_context(user),
            "link": signup_link_url(user=user, organization_name=organization_name),
        },
    )


def developer_signup(*, name: str, email: str, organization_name: str, password: str) -> None:
    """Creates the user inactive and mails them the link that completes the sign-up.
    The caller answers the same whatever happens here, so nobody learns from it whether
    an address is registered: an address already in use gets a warning e-mail instead,
    and an earlier sign-up that was never verified is replaced by this one (its link
    stops working, so only the newest e-mail counts)."""
    email = email.strip().lower()
    name = name.strip()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        try:
            with transaction.atomic():
                user = identity.user_create(
                    username=_username_for(email), email=email, password=password
                )
                user.first_name = name
                user.is_active = False
                user.save(update_fields=["first_name", "is_active"])
        except (IntegrityError, ValidationError):
            # Someone else signed up with this address in the same instant.
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise
            make_password(password)
            _mail(template="registration/signup_exists", to=email, context=_context(user))
            return
        _send_verification(user=user, organization_name=organization_name)
        return
    if not user.is_active and user.last_login is None:
        user.first_name = name
        user.set_password(password)
        user.save(update_fields=["first_name", "password"])
        _send_verification(user=user, organization_name=organization_name)
        return
    # The same password hashing as the other paths, so the time taken does not tell.
    make_password(password)
    _mail(template="registration/signup_exists", to=email, context=_context(user))


def developer_signup_resend(*, email: str) -> None:
    """A new link for a sign-up still waiting for its click, else nothing. The
    organization name of the first e-mail is not stored anywhere, so the new link
    carries none and the confirmation page asks for it."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=False).first()
    if user is not None and user.last_login is None:
        _send_verification(user=user, organization_name="")


def developer_signup_complete(
    *, user: User, organization_name: str, ip_address: str | None
) -> Welcome:
    """Activates the user and opens their organization, its funded test-mode sandbox
    (USD and EUR) and a first test secret key, all or nothing."""
    with transaction.atomic():
        # Locked, so that two clicks on the same link at once (a double click, or a mail
        # scanner racing the person) cannot both see an inactive user and open two
        # organizations.
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active or user.last_login is not None:
            raise SignupAlreadyCompleted("this sign-up was already completed")
        user.is_active = True
        user.save(update_fields=["is_active"])
        organization = identity.organization_create(name=organization_name, owner=user)
        accounts = payments.sandbox_open(holder=organization.id)
        issued = identity.api_key_create(
            organization=organization, livemode=False, name=FIRST_KEY_NAME, created_by=user
        )
        identity.audit_record(
            action="organization.created",
            actor=user,
            organization_id=organization.id,
            target=organization.id,
            ip_address=ip_address,
        )
        identity.audit_record(
            action="api_key.created",
            actor=user,
            organization_id=organization.id,
            target=issued.api_key.id,
            detail={"name": FIRST_KEY_NAME, "livemode": False, "prefix": issued.api_key.prefix},
            ip_address=ip_address,
        )
    return Welcome(user=user, organization=organization, accounts=accounts, api_key=issued)


# Sign-in security -------------------------------------------------------------------


def two_factor_device(*, user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator, if two-factor sign-in is on."""
    device: TOTPDevice | None = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device


def two_factor_pending_device(*, user: User) -> TOTPDevice | None:
    """The authenticator being set up, not yet proved with a code."""
    device: TOTPDevice | None = (
        TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    )
    return device


@transaction.atomic
def two_factor_start(*, user: User) -> TOTPDevice:
    """A fresh secret to scan; an earlier unfinished set-up is dropped, so only the QR
    code on the screen now can be confirmed."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device: TOTPDevice = TOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=False
    )
    return device


@transaction.atomic
def two_factor_confirm(
    *, device: TOTPDevice, organization_id: str, ip_address: str | None
) -> TOTPDevice:
    """Turns two-factor sign-in on; the caller has checked a code from the device."""
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    identity.audit_record(
        action="two_factor.enabled",
        actor=device.user,
        organization_id=organization_id,
        target=device.persistent_id,
        ip_address=ip_address,
    )
    return device


@transaction.atomic
def two_factor_disable(*, user: User, organization_id: str, ip_address: str | None) -> None:
    """Turns two-factor sign-in off; the caller has checked the password and a code."""
    TOTPDevice.objects.filter(user=user).delete()
    identity.audit_record(
        action="two_factor.disabled",
        actor=user,
        organization_id=organization_id,
        target=str(user.pk),
        ip_address=ip_address,
    )


@transaction.atomic
def password_change(
    *, user: User, password: str, via: str, organization_id: str, ip_address: str | None
) -> None:
    """Sets a new password (already validated by the form) and records it; `via` says
    whether the old password or an e-mailed reset link allowed it."""
    user.set_password(password)
    user.save(update_fields=["password"])
    identity.audit_record(
        action="password.changed",
        actor=user,
        organization_id=organization_id,
        target=str(user.pk),
        detail={"via": via},
        ip_address=ip_address,
    )
