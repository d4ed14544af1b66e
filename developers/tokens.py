"""The link in the sign-up e-mail.

The organization's name has to survive from the sign-up form to the click on the link
without a new model, so it travels inside the link: the token is a payload signed with
django.core.signing (timestamped, so it expires). Signing is not encryption; the name is
the user's own data going to their own mailbox.

A signed payload alone would stay valid until it expires. The payload therefore also
carries a fingerprint of the user's state, as Django's PasswordResetTokenGenerator does:
the link dies once the account is active (used once), once the user has logged in (an
account deactivated later cannot be revived by an old link), and when the sign-up is
repeated with a new password (only the newest link works).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from oauth.models import User

SALT = "developers.tokens.signup"


class LinkProblem(Enum):
    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"


class BadSignupLink(ValueError):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class SignupLink:
    user: User
    organization_name: str


def _fingerprint(user: User) -> str:
    last_login = "" if user.last_login is None else user.last_login.replace(microsecond=0)
    state = f"{user.pk}|{user.password}|{user.is_active}|{last_login}|{user.email}"
    return salted_hmac(SALT, state, algorithm="sha256").hexdigest()


def signup_token_make(*, user: User, organization_name: str) -> str:
    return signing.dumps(
        {"o": organization_name, "f": _fingerprint(user)}, salt=SALT, compress=True
    )


def signup_link_path(*, user: User, organization_name: str) -> str:
    return reverse(
        "verify-email",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": signup_token_make(user=user, organization_name=organization_name),
        },
    )


def signup_link_url(*, user: User, organization_name: str) -> str:
    """Absolute, from PUBLIC_BASE_URL rather than the request's Host header, so that a
    forged Host cannot make us mail a link to someone else's server."""
    path = signup_link_path(user=user, organization_name=organization_name)
    return f"{settings.PUBLIC_BASE_URL}{path}"


def signup_link_read(*, uidb64: str, token: str) -> SignupLink:
    """The inactive user the link was made for and the organization name it carries,
    or BadSignupLink saying why not."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.SignatureExpired as error:
        raise BadSignupLink(LinkProblem.EXPIRED) from error
    except signing.BadSignature as error:
        raise BadSignupLink(LinkProblem.INVALID) from error
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError) as error:
        raise BadSignupLink(LinkProblem.INVALID) from error
    if not 0 < pk < 2**63:
        raise BadSignupLink(LinkProblem.INVALID)
    user = User.objects.filter(pk=pk).first()
    if user is None or not isinstance(payload, dict):
        raise BadSignupLink(LinkProblem.INVALID)
    if user.is_active or user.last_login is not None:
        raise BadSignupLink(LinkProblem.USED)
    if not constant_time_compare(str(payload.get("f", "")), _fingerprint(user)):
        raise BadSignupLink(LinkProblem.INVALID)
    return SignupLink(user=user, organization_name=str(payload.get("o", "")))
