"""Who is calling: one Principal per request, from an API key or an OAuth 2.0 access
token, and the scope check every view declares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from oauth import selectors as access
from oauth import services as identity

CREDENTIAL_QUERY_PARAMETERS = {"api_key", "key", "access_token", "token", "secret"}


@dataclass(frozen=True)
class Principal:
    """Everything a view needs to scope its queries: whose data, which mode, what it
    may do, and through which credential."""

    organization_id: str
    livemode: bool
    scopes: frozenset[str]
    credential_id: str
    credential_type: str  # "api_key" or "oauth_token"
    application_id: str | None = None
    # For an OAuth token: the accounts the user granted; None means all of them.
    account_ids: frozenset[str] | None = None
    # For an OAuth token a user granted: that grant. It sees and manages only the webhook
    # endpoints made under it, which get only what the grant may read.
    consent_id: str | None = None
    rate_limit: int | None = None

    is_authenticated = True

    def may_see_account(self, account_id: str) -> bool:
        return self.account_ids is None or account_id in self.account_ids


class AuthenticationFailed(exceptions.AuthenticationFailed):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail=detail, code=code)


class BearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer sk_test_…` (or rk_…). Credentials in the query string are
    refused outright: they end up in logs, browser history and proxies."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        if CREDENTIAL_QUERY_PARAMETERS & set(request.query_params):
            raise AuthenticationFailed(
                "credential_in_query",
                "Credentials in the query string are refused; use the Authorization header.",
            )
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationFailed(
                "invalid_api_key", "Use `Authorization: Bearer <credential>`."
            )
        if credential.startswith(("sk_", "rk_")):
            principal = self._api_key(credential)
        else:
            principal = self._oauth_token(credential)
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def _api_key(self, secret: str) -> Principal:
        try:
            api_key = identity.api_key_authenticate(secret=secret)
        except identity.APIKeyError as error:
            raise AuthenticationFailed(error.code, str(error)) from None
        return Principal(
            organization_id=api_key.organization_id,
            livemode=api_key.livemode,
            scopes=frozenset(api_key.scopes),
            credential_id=api_key.id,
            credential_type="api_key",
            application_id=api_key.application_id,
            rate_limit=api_key.organization.api_rate_limit,
        )

    def _oauth_token(self, token: str) -> Principal:
        try:
            grant = access.access_token_grant(token=token)
        except access.TokenRefused as error:
            raise AuthenticationFailed(error.code, str(error)) from None
        return Principal(
            organization_id=grant.organization_id,
            livemode=grant.livemode,
            scopes=grant.scopes,
            credential_id=grant.token_id,
            credential_type="oauth_token",
            application_id=grant.application_id,
            account_ids=grant.account_ids,
            consent_id=grant.consent_id,
        )


class HasScope(BasePermission):
    """Each view names the scope each method needs in `required_scopes`."""

    message = "This credential lacks the scope this operation needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, Principal):
            raise exceptions.NotAuthenticated()
        needed = view.required_scopes.get(request.method)
        if needed and needed not in principal.scopes:
            raise exceptions.PermissionDenied(
                detail=f"This credential lacks the `{needed}` scope.", code="insufficient_scope"
            )
        return True


def principal_of(request: Request) -> Principal:
    principal = request.user
    assert isinstance(principal, Principal)
    return principal
