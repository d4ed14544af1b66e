"""Reads of identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db.models import QuerySet

from oauth.models import APIKey, Application, Consent, Membership, Organization, User


@dataclass(frozen=True)
class TokenGrant:
    """What an OAuth access token may do, as the API needs it."""

    token_id: str
    organization_id: str
    livemode: bool
    scopes: frozenset[str]
    application_id: str
    # None: every account of the organization (client_credentials, the app's own).
    account_ids: frozenset[str] | None
    # The user's grant the token acts under (None for client_credentials).
    consent_id: str | None = None


class TokenRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def access_token_grant(*, token: str) -> TokenGrant:
    """Two indexed queries: the token (stored only as a SHA-256 checksum) with its
    application, and the consent it was issued under."""
    from oauth2_provider.models import get_access_token_model

    access_token = (
        get_access_token_model()
        .objects.select_related("application")
        .filter(token_checksum=hashlib.sha256(token.encode()).hexdigest())
        .first()
    )
    if access_token is None or access_token.application is None:
        raise TokenRefused("invalid_token", "the access token is not valid")
    if access_token.is_expired():
        raise TokenRefused("token_expired", "the access token has expired")
    application: Application = access_token.application
    scopes = frozenset(access_token.scope.split())
    if access_token.user_id is None:
        # client_credentials: the application acts for its own organization.
        return TokenGrant(
            token_id=f"tok_{access_token.pk}",
            organization_id=application.organization_id,
            livemode=False,
            scopes=scopes,
            application_id=application.id,
            account_ids=None,
        )
    consent = Consent.objects.filter(
        user_id=access_token.user_id, application=application, revoked_at=None
    ).first()
    if consent is None:
        raise TokenRefused("invalid_token", "the grant behind this token was revoked")
    return TokenGrant(
        token_id=f"tok_{access_token.pk}",
        organization_id=consent.organization_id,
        livemode=consent.livemode,
        scopes=scopes & frozenset(consent.scopes),
        application_id=application.id,
        account_ids=frozenset(consent.account_ids),
        consent_id=consent.id,
    )


def user_consents(*, user: User) -> QuerySet[Consent]:
    return (
        Consent.objects.filter(user=user, revoked_at=None)
        .select_related("application", "application__organization", "organization")
        .order_by("-created_at")
    )


def user_memberships(*, user: User) -> QuerySet[Membership]:
    """The organizations a person belongs to, oldest first: the first is where the portal
    opens."""
    return Membership.objects.filter(user=user).select_related("organization").order_by("id")


def organization_api_keys(*, organization: Organization) -> QuerySet[APIKey]:
    """The organization's keys, newest first, with who made them and what replaced them."""
    return (
        APIKey.objects.filter(organization=organization)
        .select_related("created_by", "replaced_by")
        .order_by("-created_at", "-id")
    )


def organization_applications(*, organization: Organization) -> QuerySet[Application]:
    """The organization's OAuth applications, oldest first."""
    applications: QuerySet[Application] = Application.objects.filter(
        organization=organization
    ).order_by("created", "id")
    return applications


def organization_memberships(*, organization: Organization) -> QuerySet[Membership]:
    """The organization's members with their users, in the order they joined."""
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("created_at", "id")
    )


def user_by_email(*, email: str) -> User | None:
    """The account registered under `email`, whatever its case (e-mails are unique)."""
    return User.objects.filter(email__iexact=email.strip()).first()
