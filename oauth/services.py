"""Writes to identity: users, organizations, memberships, applications, API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret

from oauth.models import (
    APIKey,
    Application,
    AuditEntry,
    Consent,
    Membership,
    Organization,
    Role,
    Scope,
    User,
)


def user_create(*, username: str, email: str, password: str, is_staff: bool = False) -> User:
    user = User(username=username, email=email.strip().lower(), is_staff=is_staff)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    """A new tenant with its first member, the owner."""
    organization = Organization(name=name.strip())
    organization.full_clean()
    organization.save()
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    return organization


def membership_set(*, organization: Organization, user: User, role: Role) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


@dataclass(frozen=True)
class IssuedApplication:
    application: Application
    # Shown once: only a hash of it is stored.
    client_secret: str


def application_create(
    *,
    organization: Organization,
    name: str,
    redirect_uris: list[str],
    confidential: bool = True,
    created_by: User | None = None,
    description: str = "",
) -> IssuedApplication:
    redirect_uris_check(redirect_uris)
    client_secret = generate_client_secret() if confidential else ""
    application = Application(
        organization=organization,
        name=name,
        description=description,
        user=created_by,
        redirect_uris=" ".join(redirect_uris),
        client_type=(
            Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC
        ),
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        client_secret=client_secret,
        hash_client_secret=True,
    )
    application.full_clean()
    application.save()
    return IssuedApplication(application=application, client_secret=client_secret)


LOOPBACK_HOSTS = {"127.0.0.1", "::1"}


def redirect_uris_check(redirect_uris: list[str]) -> None:
    """`https` URIs; `http` only on a loopback address, and only outside production.
    No fragments and no wildcards (RFC 9700 §2.1)."""
    if not redirect_uris:
        raise ValidationError({"redirect_uris": "at least one redirect URI is required"})
    for uri in redirect_uris:
        parts = urlsplit(uri)
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not (loopback and not settings.PRODUCTION):
            raise ValidationError(
                {
                    "redirect_uris": f"{uri}: use https "
                    "(http only on 127.0.0.1 or [::1], in development)"
                }
            )
        if parts.fragment or "*" in uri or not parts.hostname:
            raise ValidationError({"redirect_uris": f"{uri}: no fragments or wildcards"})


def application_rotate_secret(*, application: Application) -> str:
    """A new client secret, shown once; the old one stops working at once."""
    client_secret: str = generate_client_secret()
    application.client_secret = client_secret
    application.save(update_fields=["client_secret", "updated"])
    return client_secret


def application_update(
    *, application: Application, name: str, description: str, redirect_uris: list[str]
) -> Application:
    """Rename, redescribe or re-register redirect URIs. The client type and secret stay:
    changing either is a new credential, not an edit."""
    redirect_uris_check(redirect_uris)
    application.name = name
    application.description = description
    application.redirect_uris = " ".join(redirect_uris)
    application.full_clean()
    application.save(update_fields=["name", "description", "redirect_uris", "updated"])
    return application


# API keys ---------------------------------------------------------------------------

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 32  # 32 base-62 characters: 190 bits of randomness
MAX_ROTATION_GRACE = dt.timedelta(days=7)
DEFAULT_ROTATION_GRACE = dt.timedelta(hours=24)
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class APIKeyError(ValueError):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass(frozen=True)
class IssuedKey:
    api_key: APIKey
    # Shown once: only its HMAC is stored.
    secret: str


def api_key_digest(secret: str) -> str:
    """HMAC-SHA256 under API_KEY_SECRET. Keys are random, so a fast keyed hash is as
    strong as a slow password hash here, and a leaked table alone cannot be checked
    against guesses without the separate secret."""
    return hmac.new(settings.API_KEY_SECRET.encode(), secret.encode(), hashlib.sha256).hexdigest()


def api_key_create(
    *,
    organization: Organization,
    livemode: bool,
    scopes: Sequence[str] | None = None,
    name: str = "",
    expires_at: dt.datetime | None = None,
    application: Application | None = None,
    created_by: User | None = None,
) -> IssuedKey:
    """A secret key (all scopes) when `scopes` is None, else a restricted key."""
    restricted = scopes is not None
    granted = sorted(set(scopes)) if scopes is not None else sorted(Scope.values)
    unknown = set(granted) - set(Scope.values)
    if unknown:
        raise APIKeyError(
            "validation_error", f"unknown scopes: {', '.join(sorted(unknown))}", "scopes"
        )
    if restricted and not granted:
        raise APIKeyError("validation_error", "a restricted key needs at least one scope", "scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise APIKeyError("validation_error", "expires_at must be in the future", "expires_at")
    if application is not None and application.organization_id != organization.id:
        raise APIKeyError("not_found", "no such application", "application")
    prefix = f"{'rk' if restricted else 'sk'}_{'live' if livemode else 'test'}_"
    secret = prefix + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))
    api_key = APIKey.objects.create(
        organization=organization,
        application=application,
        name=name,
        livemode=livemode,
        restricted=restricted,
        prefix=prefix,
        last4=secret[-4:],
        digest=api_key_digest(secret),
        scopes=granted,
        expires_at=expires_at,
        created_by=created_by,
    )
    return IssuedKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_rotate(
    *,
    api_key: APIKey,
    grace: dt.timedelta = DEFAULT_ROTATION_GRACE,
    created_by: User | None = None,
) -> IssuedKey:
    """A new key with the same scopes; the old one keeps working for `grace` (at most
    seven days, zero to end it now), so deployments can switch without downtime."""
    if not dt.timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise APIKeyError("validation_error", "the grace period is 0 to 7 days", "grace")
    api_key = APIKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None or api_key.replaced_by_id is not None:
        raise APIKeyError("api_key_inactive", "this key was already revoked or rotated")
    issued = api_key_create(
        organization=api_key.organization,
        livemode=api_key.livemode,
        scopes=api_key.scopes if api_key.restricted else None,
        name=api_key.name,
        expires_at=api_key.expires_at,
        application=api_key.application,
        created_by=created_by,
    )
    ends = timezone.now() + grace
    api_key.replaced_by = issued.api_key
    api_key.expires_at = min(ends, api_key.expires_at) if api_key.expires_at else ends
    api_key.save(update_fields=["replaced_by", "expires_at"])
    return issued


def api_key_revoke(*, api_key: APIKey) -> APIKey:
    """Ends the key at once."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, secret: str) -> APIKey:
    """The active key for `secret`, or APIKeyError(invalid_api_key / api_key_expired).
    One indexed query; last_used_at is written at most once a minute."""
    api_key = (
        APIKey.objects.select_related("organization").filter(digest=api_key_digest(secret)).first()
    )
    if api_key is None or api_key.revoked_at is not None:
        raise APIKeyError("invalid_api_key", "the API key is not valid")
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise APIKeyError("api_key_expired", "the API key has expired")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


# Consents ---------------------------------------------------------------------------

# Moving money is for those who run the organization.
ROLES_THAT_MAY_GRANT_TRANSFERS = {Role.OWNER, Role.ADMIN}


class ConsentError(ValueError):
    pass


@transaction.atomic
def consent_grant(
    *,
    user: User,
    application: Application,
    organization: Organization,
    scopes: list[str],
    account_ids: list[str],
    livemode: bool,
) -> Consent:
    """Record what `user` grants `application`; it replaces their earlier consent.
    The caller has checked that the accounts belong to `organization`."""
    membership = Membership.objects.filter(user=user, organization=organization).first()
    if membership is None:
        raise ConsentError("you are not a member of that organization")
    if Scope.TRANSFERS_WRITE in scopes and membership.role not in ROLES_THAT_MAY_GRANT_TRANSFERS:
        raise ConsentError("only an owner or admin of the organization may let an app move money")
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ConsentError(f"unknown scopes: {', '.join(sorted(unknown))}")
    Consent.objects.filter(user=user, application=application, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    return Consent.objects.create(
        user=user,
        application=application,
        organization=organization,
        livemode=livemode,
        scopes=sorted(set(scopes)),
        account_ids=sorted(set(account_ids)),
    )


@transaction.atomic
def consent_revoke(*, consent: Consent) -> Consent:
    """Ends the grant and every token issued under it, at once."""
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    if consent.revoked_at is None:
        consent.revoked_at = timezone.now()
        consent.save(update_fields=["revoked_at", "updated_at"])
    tokens = {"user": consent.user, "application": consent.application}
    get_refresh_token_model().objects.filter(**tokens).delete()
    get_access_token_model().objects.filter(**tokens).delete()
    return consent


def audit_record(
    *,
    action: str,
    actor: User | None,
    organization_id: str = "",
    target: str = "",
    detail: dict[str, object] | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    """One line of the audit log. Call it inside the transaction of the change it
    records, so that the change and its record commit or vanish together."""
    return AuditEntry.objects.create(
        action=action,
        actor=actor.get_username() if actor is not None else "system",
        actor_id=str(actor.pk) if actor is not None else "",
        organization_id=organization_id,
        target=target,
        detail=detail or {},
        ip_address=ip_address or None,
    )


# Memberships beyond the first --------------------------------------------------------


class LastOwnerError(ValueError):
    """An organization always keeps at least one owner."""


def _owners_locked(organization: Organization) -> set[int]:
    # Two owners demoting (or removing) each other at the same moment would each still
    # see the other as an owner and leave the organization with none. Locking every
    # owner row, in id order so that two such changes cannot deadlock, makes the second
    # wait and then see the first one's result.
    return set(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Role.OWNER)
        .order_by("id")
        .values_list("user_id", flat=True)
    )


@transaction.atomic
def membership_role_change(*, organization: Organization, user: User, role: Role) -> Membership:
    """Gives an existing member another role; never takes it from the last owner."""
    owners = _owners_locked(organization)
    membership = Membership.objects.select_for_update().get(organization=organization, user=user)
    if role != Role.OWNER and owners == {user.pk}:
        raise LastOwnerError("the last owner cannot give up the owner role")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, organization: Organization, user: User) -> None:
    """Takes `user` out of `organization`; never its last owner."""
    owners = _owners_locked(organization)
    if owners == {user.pk}:
        raise LastOwnerError("the last owner cannot leave the organization")
    Membership.objects.filter(organization=organization, user=user).delete()
