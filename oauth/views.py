"""The OAuth 2.0 provider's own pages: consent, and the RFC 8414 metadata document.
Tokens, revocation and introspection are django-oauth-toolkit's views."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import AuthorizationView, IntrospectTokenView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error  # type: ignore[import-untyped]

from ledger import selectors as books
from oauth import services as identity
from oauth.forms import ConsentForm
from oauth.models import Application, Membership, Scope

# Scopes that name no account: granting them alone needs no account chosen.
ACCOUNT_FREE_SCOPES = {Scope.WEBHOOKS_MANAGE, Scope.EVENTS_READ}


class ConsentView(AuthorizationView):  # type: ignore[misc]
    """The authorization endpoint's consent screen: the application and its owner, the
    scopes in plain words, and the user's choice of accounts."""

    template_name = "oauth/consent.html"
    form_class = ConsentForm

    def validate_authorization_request(self, request: HttpRequest) -> tuple[Any, dict[str, Any]]:
        scopes, credentials = super().validate_authorization_request(request)
        # Refuse `plain` PKCE before the user is asked anything (django-oauth-toolkit
        # would only refuse it when the code is issued, after the consent).
        if credentials.get("code_challenge_method") != "S256":
            raise OAuthToolkitError(
                error=CustomOAuth2Error(
                    error="invalid_request",
                    description='PKCE with code_challenge_method "S256" is required.',
                    state=credentials.get("state"),
                ),
                redirect_uri=credentials["redirect_uri"],
            )
        return scopes, credentials

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_form_kwargs()
        user = self.request.user
        memberships = Membership.objects.filter(user=user).select_related("organization")
        kwargs["user"] = user
        kwargs["accounts"] = {
            m.organization_id: list(
                books.accounts_of(holder=m.organization_id, livemode=False).order_by("id")
            )
            + list(books.accounts_of(holder=m.organization_id, livemode=True).order_by("id"))
            for m in memberships
        }
        return kwargs

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        application = context.get("application")
        if application is None:
            form = context.get("form")
            client_id = form["client_id"].value() if form is not None else None
            application = Application.objects.filter(client_id=client_id).first()
            context["application"] = application
        scopes = context.get("scopes")
        if scopes is None and context.get("form") is not None:
            scopes = (context["form"]["scope"].value() or "").split()
        context["scope_labels"] = [Scope(s).label for s in scopes or [] if s in Scope.values]
        context["asks_transfers"] = Scope.TRANSFERS_WRITE in (scopes or [])
        return context

    def form_valid(self, form: ConsentForm) -> HttpResponse:
        if form.cleaned_data.get("allow"):
            application = Application.objects.get(client_id=form.cleaned_data["client_id"])
            scopes = form.cleaned_data["scope"].split()
            accounts = form.cleaned_data.get("accounts") or []
            if not accounts and set(scopes) - ACCOUNT_FREE_SCOPES:
                form.add_error("accounts", "Choose at least one account to share.")
                return self._again(form)
            organization = form.memberships[form.cleaned_data["organization"]].organization
            try:
                identity.consent_grant(
                    user=self.request.user,
                    application=application,
                    organization=organization,
                    scopes=scopes,
                    account_ids=list(accounts),
                    livemode=form.cleaned_data["livemode"],
                )
            except identity.ConsentError as error:
                form.add_error(None, str(error))
                return self._again(form)
        response: HttpResponse = super().form_valid(form)
        return response

    def _again(self, form: ConsentForm) -> HttpResponse:
        """The consent page once more, with what was wrong."""
        response: HttpResponse = self.form_invalid(form)
        return response


class IntrospectView(IntrospectTokenView):  # type: ignore[misc]
    """RFC 7662 introspection, for a client's own tokens only: django-oauth-toolkit
    would describe any token to any authenticated client."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = request.POST.get("token", "")
        access_token = (
            get_access_token_model()
            .objects.select_related("application")
            .filter(token_checksum=hashlib.sha256(token.encode()).hexdigest())
            .first()
        )
        if (
            access_token is None
            or access_token.application is None
            or (access_token.application.client_id != _client_id(request))
        ):
            return JsonResponse({"active": False})
        response: HttpResponse = self.get_token_response(token)
        return response

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return JsonResponse(
            {"error": "invalid_request", "error_description": "Use POST."}, status=405
        )


def _client_id(request: HttpRequest) -> str:
    """The client that authenticated this request (django-oauth-toolkit has already
    checked its secret before the view runs)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.split(":", 1)[0])
    return request.POST.get("client_id", "")


@require_GET
@cache_control(max_age=3600, public=True)
def authorization_server_metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414: what this authorization server supports — and nothing it does not."""
    base = settings.PUBLIC_BASE_URL
    return JsonResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize/",
            "token_endpoint": f"{base}/oauth/token/",
            "revocation_endpoint": f"{base}/oauth/revoke_token/",
            "introspection_endpoint": f"{base}/oauth/introspect/",
            "scopes_supported": list(Scope.values),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": f"{base}/docs/oauth",
        }
    )
