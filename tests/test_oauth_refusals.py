"""Everything the OAuth 2.0 provider must refuse (RFC 9700), driven through the
Django test client: fast, and the same views as a live server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from ledger.models import Account
from oauth import services as identity
from oauth.models import Application, Organization, User
from payments import services as payments
from tests.factories import make_organization, make_user

pytestmark = pytest.mark.django_db
REDIRECT_URI = "http://127.0.0.1:8765/callback"


@dataclass
class World:
    alice: User
    organization: Organization
    application: Application
    secret: str
    usd: Account
    other_usd: Account


@pytest.fixture
def world() -> World:
    alice = make_user("alice")
    organization = make_organization("Alice Ltd", owner=alice)
    [usd] = payments.sandbox_open(holder=organization.id, currencies=("USD",))
    [other_usd] = payments.sandbox_open(holder=organization.id, currencies=("USD",))
    issued = identity.application_create(
        organization=make_organization("Vendor"),
        name="Budget Buddy",
        redirect_uris=[REDIRECT_URI],
    )
    return World(alice, organization, issued.application, issued.client_secret, usd, other_usd)


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(world: World, **overrides: str | None) -> str:
    params = {
        "response_type": "code",
        "client_id": world.application.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "accounts:read transactions:read transfers:write",
        "state": "st4te",
        "code_challenge": challenge("v" * 50),
        "code_challenge_method": "S256",
        **overrides,
    }
    return "/oauth/authorize/?" + urlencode({k: v for k, v in params.items() if v is not None})


def grant_code(client: Client, world: World, accounts: list[str], verifier: str = "v" * 50) -> str:
    client.force_login(world.alice)
    page = client.get(authorize_url(world, code_challenge=challenge(verifier)))
    assert page.status_code == 200
    hidden = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode())
    )
    hidden.update(
        re.findall(
            r'<input type="hidden" name="([^"]+)" id="[^"]*" value="([^"]*)"', page.content.decode()
        )
    )
    data: dict[str, Any] = {
        **hidden,
        "organization": world.organization.id,
        "accounts": accounts,
        "allow": "on",
    }
    answer = client.post("/oauth/authorize/", data)
    assert answer.status_code == 302, answer.content
    return parse_qs(urlsplit(answer["Location"]).query)["code"][0]


def token_request(client: Client, world: World, **data: str) -> Any:
    basic = base64.b64encode(f"{world.application.client_id}:{world.secret}".encode()).decode()
    return client.post("/oauth/token/", data, headers={"Authorization": f"Basic {basic}"})


def exchange(client: Client, world: World, code: str, verifier: str = "v" * 50) -> Any:
    return token_request(
        client,
        world,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )


def error_of(response: Any) -> str:
    if response.status_code == 302:
        return str(parse_qs(urlsplit(response["Location"]).query).get("error", [""])[0])
    return str(response.json().get("error", ""))


def api_get(client: Client, path: str, token: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_an_authorization_request_without_pkce_is_refused(client: Client, world: World) -> None:
    client.force_login(world.alice)
    answer = client.get(authorize_url(world, code_challenge=None, code_challenge_method=None))
    assert error_of(answer) == "invalid_request"


def test_plain_pkce_is_refused_before_the_user_is_asked(client: Client, world: World) -> None:
    client.force_login(world.alice)
    answer = client.get(
        authorize_url(world, code_challenge="v" * 50, code_challenge_method="plain")
    )
    assert answer.status_code == 302
    assert answer["Location"].startswith(REDIRECT_URI)
    assert error_of(answer) == "invalid_request"
    assert parse_qs(urlsplit(answer["Location"]).query)["state"] == ["st4te"]


def test_the_wrong_verifier_gets_no_token(client: Client, world: World) -> None:
    code = grant_code(client, world, [world.usd.id])
    answer = exchange(client, world, code, verifier="w" * 50)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/callback/../evil",
        "http://127.0.0.1:8765/callbackx",
        "http://127.0.0.1:8765/callback?next=https://evil.test",
        "http://127.0.0.1:8766/callback",
        "https://evil.test/callback",
        "http://127.0.0.1:8765/callback/",
    ],
)
def test_an_unregistered_redirect_uri_is_refused_without_redirecting_to_it(
    client: Client, world: World, redirect_uri: str
) -> None:
    client.force_login(world.alice)
    answer = client.get(authorize_url(world, redirect_uri=redirect_uri))
    assert answer.status_code != 302, "never an open redirect"
    assert "cannot be served" in answer.content.decode()


def test_a_code_works_once(client: Client, world: World) -> None:
    code = grant_code(client, world, [world.usd.id])
    assert exchange(client, world, code).status_code == 200
    again = exchange(client, world, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_reused_refresh_token_is_refused_and_revokes_the_family(
    client: Client, world: World
) -> None:
    tokens = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    first = token_request(
        client, world, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    ).json()
    assert "access_token" in first
    replayed = token_request(
        client, world, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    assert api_get(client, "/v1/accounts", first["access_token"]).status_code == 401, (
        "the whole family dies with the reuse"
    )
    assert (
        token_request(
            client, world, grant_type="refresh_token", refresh_token=first["refresh_token"]
        ).status_code
        == 400
    )


def test_an_expired_token_is_refused(client: Client, world: World) -> None:
    tokens = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    get_access_token_model().objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    answer = api_get(client, "/v1/accounts", tokens["access_token"])
    assert answer.status_code == 401
    assert answer.json()["code"] == "token_expired"


def test_a_token_in_the_query_string_is_refused(client: Client, world: World) -> None:
    tokens = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    answer = client.get(f"/v1/accounts?access_token={tokens['access_token']}")
    assert answer.status_code == 401
    assert answer.json()["code"] == "credential_in_query"


def test_implicit_and_password_grants_are_refused(client: Client, world: World) -> None:
    client.force_login(world.alice)
    implicit = client.get(authorize_url(world, response_type="token"))
    assert implicit.status_code != 200 or "cannot be served" in implicit.content.decode()
    assert "access_token" not in implicit.get("Location", "")
    password = token_request(
        client, world, grant_type="password", username="alice", password="a-long-test-password-42"
    )
    assert password.status_code in (400, 401)
    assert password.json()["error"] in {"unsupported_grant_type", "unauthorized_client"}


def test_a_token_reaches_only_the_granted_account(client: Client, world: World) -> None:
    tokens = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    token = tokens["access_token"]
    assert api_get(client, f"/v1/accounts/{world.usd.id}/balance", token).status_code == 200
    for path in (
        f"/v1/accounts/{world.other_usd.id}",
        f"/v1/accounts/{world.other_usd.id}/balance",
        f"/v1/accounts/{world.other_usd.id}/transactions",
    ):
        assert api_get(client, path, token).status_code == 404
    spend = client.post(
        "/v1/transfers",
        {
            "source_account": world.other_usd.id,
            "destination_account": world.usd.id,
            "amount": 100,
            "currency": "USD",
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert spend.status_code == 404
    assert spend.json()["code"] == "not_found"


def test_a_token_is_limited_to_its_scopes(client: Client, world: World) -> None:
    client.force_login(world.alice)
    verifier = "s" * 50
    page = client.get(
        authorize_url(world, scope="accounts:read", code_challenge=challenge(verifier))
    )
    hidden = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode())
    )
    hidden.update(
        re.findall(
            r'<input type="hidden" name="([^"]+)" id="[^"]*" value="([^"]*)"', page.content.decode()
        )
    )
    answer = client.post(
        "/oauth/authorize/",
        {
            **hidden,
            "organization": world.organization.id,
            "accounts": [world.usd.id],
            "allow": "on",
        },
    )
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    token = exchange(client, world, code, verifier=verifier).json()["access_token"]
    refused = client.post(
        "/v1/transfers",
        {
            "source_account": world.usd.id,
            "destination_account": world.usd.id,
            "amount": 1,
            "currency": "USD",
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"


def test_client_credentials_act_for_the_applications_own_organization(
    client: Client, world: World
) -> None:
    vendor_accounts = payments.sandbox_open(holder=world.application.organization_id)
    answer = token_request(client, world, grant_type="client_credentials", scope="accounts:read")
    assert answer.status_code == 200, answer.content
    seen = api_get(client, "/v1/accounts", answer.json()["access_token"]).json()["data"]
    assert {a["id"] for a in seen} == {a.id for a in vendor_accounts}


def test_the_metadata_document_lists_only_what_is_supported(client: Client) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "implicit" not in metadata["grant_types_supported"]
    assert "password" not in metadata["grant_types_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["token_endpoint"].endswith("/oauth/token/")


def test_a_token_is_stored_only_as_a_checksum(client: Client, world: World) -> None:
    tokens = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    stored = get_access_token_model().objects.get()
    assert stored.token != tokens["access_token"]
    assert stored.token_checksum == hashlib.sha256(tokens["access_token"].encode()).hexdigest()
    assert secrets.compare_digest(stored.token_checksum, stored.token_checksum)


def test_a_client_may_introspect_its_own_tokens_only(client: Client, world: World) -> None:
    token = exchange(client, world, grant_code(client, world, [world.usd.id])).json()
    own = token_request_to(
        client,
        "/oauth/introspect/",
        world.application.client_id,
        world.secret,
        token=token["access_token"],
    )
    assert own.json()["active"] is True
    assert own.json()["client_id"] == world.application.client_id
    other = identity.application_create(
        organization=world.organization, name="Nosy", redirect_uris=[REDIRECT_URI]
    )
    nosy = token_request_to(
        client,
        "/oauth/introspect/",
        other.application.client_id,
        other.client_secret,
        token=token["access_token"],
    )
    assert nosy.status_code == 200
    assert nosy.json() == {"active": False}


def token_request_to(client: Client, path: str, client_id: str, secret: str, **data: str) -> Any:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post(path, data, headers={"Authorization": f"Basic {basic}"})


def test_a_public_client_uses_pkce_alone_and_cannot_use_client_credentials(
    client: Client, world: World
) -> None:
    public = identity.application_create(
        organization=world.application.organization,
        name="Mobile app",
        redirect_uris=[REDIRECT_URI],
        confidential=False,
    )
    assert public.client_secret == ""
    world.application = public.application
    code = grant_code(client, world, [world.usd.id])
    answer = client.post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": "v" * 50,
            "client_id": public.application.client_id,
        },
    )
    assert answer.status_code == 200, answer.content
    assert api_get(client, "/v1/accounts", answer.json()["access_token"]).status_code == 200
    refused = client.post(
        "/oauth/token/",
        {
            "grant_type": "client_credentials",
            "client_id": public.application.client_id,
        },
    )
    assert refused.status_code in (400, 401)
