"""A third party's real OAuth client library (Authlib) drives the whole flow against a
live gunicorn: authorize with PKCE, log in, consent to some accounts, exchange the
code, use the API, refresh, revoke."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from ledger.models import Account
from oauth import services as identity
from oauth.models import Application, Consent, Organization, Role, User
from payments import services as payments
from tests.factories import PASSWORD, add_member, make_organization, make_user
from tests.live import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REDIRECT_URI = "http://127.0.0.1:8765/callback"
SCOPES = "accounts:read transactions:read transfers:read transfers:write"


@dataclass
class World:
    base: str
    organization: Organization
    alice: User
    application: Application
    client_secret: str
    usd: Account
    savings: Account
    eur: Account


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[str]:
    with gunicorn() as base:
        yield base


@pytest.fixture
def world(server: str) -> World:
    alice = make_user("alice")
    organization = make_organization("Alice Ltd", owner=alice)
    usd, eur = payments.sandbox_open(holder=organization.id, currencies=("USD", "EUR"))
    [savings] = payments.sandbox_open(holder=organization.id, currencies=("USD",))
    vendor = make_organization("Budgeting Inc")
    issued = identity.application_create(
        organization=vendor, name="Budget Buddy", redirect_uris=[REDIRECT_URI]
    )
    return World(
        server, organization, alice, issued.application, issued.client_secret, usd, savings, eur
    )


def client(world: World, **extra: object) -> OAuth2Session:
    return OAuth2Session(
        world.application.client_id,
        world.client_secret,
        scope=SCOPES,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        **extra,
    )


def log_in(browser: requests.Session, base: str, username: str) -> None:
    page = browser.get(f"{base}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    answer = browser.post(
        f"{base}/login/",
        data={"csrfmiddlewaretoken": token.group(1), "username": username, "password": PASSWORD},
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text


def consent_form(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    fields.update(
        re.findall(r'<input type="hidden" name="([^"]+)" id="[^"]*" value="([^"]*)"', html)
    )
    return {k: v.replace("&amp;", "&") for k, v in fields.items()}


def authorize(
    world: World,
    session: OAuth2Session,
    verifier: str,
    *,
    accounts: list[str],
    allow: bool = True,
    username: str = "alice",
) -> requests.Response:
    url, _ = session.create_authorization_url(
        f"{world.base}/oauth/authorize/", code_verifier=verifier
    )
    browser = requests.Session()
    log_in(browser, world.base, username)
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, page.text
    assert "Budget Buddy" in page.text and "Budgeting Inc" in page.text
    assert "Move money" in page.text, "the scopes in plain words"
    form = consent_form(page.text)
    data: list[tuple[str, str]] = list(form.items())
    data += [("organization", world.organization.id)] + [("accounts", a) for a in accounts]
    if allow:
        data.append(("allow", "on"))
    return browser.post(
        f"{world.base}/oauth/authorize/",
        data=data,
        headers={"Referer": url},
        allow_redirects=False,
        timeout=10,
    )


def test_the_whole_flow_with_a_real_client_library(world: World) -> None:
    session = client(world)
    verifier = secrets.token_urlsafe(48)
    answer = authorize(world, session, verifier, accounts=[world.usd.id, world.savings.id])
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT_URI)
    assert query["iss"] == [world.base], "RFC 9207: the issuer in the response"

    token = session.fetch_token(
        f"{world.base}/oauth/token/", authorization_response=location, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] <= 3600
    api = f"{world.base}/v1"

    seen = session.get(f"{api}/accounts", timeout=10).json()["data"]
    assert {a["id"] for a in seen} == {world.usd.id, world.savings.id}, "only what was granted"
    assert session.get(f"{api}/accounts/{world.eur.id}", timeout=10).status_code == 404

    made = session.post(
        f"{api}/transfers",
        json={
            "source_account": world.usd.id,
            "destination_account": world.savings.id,
            "amount": 1_250,
            "currency": "USD",
        },
        timeout=10,
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending"

    old_access, old_refresh = token["access_token"], token["refresh_token"]
    refreshed = session.refresh_token(f"{world.base}/oauth/token/", refresh_token=old_refresh)
    assert refreshed["refresh_token"] != old_refresh, "refresh tokens rotate"
    assert session.get(f"{api}/accounts", timeout=10).status_code == 200

    revoked = requests.post(
        f"{world.base}/oauth/revoke_token/",
        data={"token": refreshed["access_token"], "token_type_hint": "access_token"},
        auth=(world.application.client_id, world.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    gone = requests.get(
        f"{api}/accounts",
        timeout=10,
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert gone.status_code == 401
    assert gone.json()["code"] == "invalid_token"
    stale = requests.get(
        f"{api}/accounts", timeout=10, headers={"Authorization": f"Bearer {old_access}"}
    )
    assert stale.status_code == 401


def test_denying_redirects_back_with_access_denied_and_the_state(world: World) -> None:
    session = client(world)
    answer = authorize(world, session, secrets.token_urlsafe(48), accounts=[], allow=False)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    assert query["error"] == ["access_denied"]
    assert query["state"], "the state comes back"
    assert not Consent.objects.exists()


def test_a_viewer_cannot_grant_transfers_write(world: World) -> None:
    bob = make_user("bob")
    add_member(world.organization, bob, Role.VIEWER)
    session = client(world)
    answer = authorize(
        world, session, secrets.token_urlsafe(48), accounts=[world.usd.id], username="bob"
    )
    assert answer.status_code == 200, "the consent page again, with the reason"
    assert "only an owner or admin" in answer.text
    assert not Consent.objects.exists()


def test_revoking_in_the_portal_ends_the_tokens_at_once(world: World) -> None:
    session = client(world)
    verifier = secrets.token_urlsafe(48)
    answer = authorize(world, session, verifier, accounts=[world.usd.id])
    token = session.fetch_token(
        f"{world.base}/oauth/token/",
        authorization_response=answer.headers["Location"],
        code_verifier=verifier,
    )
    assert session.get(f"{world.base}/v1/accounts", timeout=10).status_code == 200

    browser = requests.Session()
    log_in(browser, world.base, "alice")
    page = browser.get(f"{world.base}/authorized-apps/", timeout=10)
    assert "Budget Buddy" in page.text and world.usd.id in page.text
    consent = Consent.objects.get(revoked_at=None)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf
    browser.post(
        f"{world.base}/authorized-apps/{consent.id}/revoke",
        data={"csrfmiddlewaretoken": csrf.group(1)},
        headers={"Referer": f"{world.base}/authorized-apps/"},
        timeout=10,
    )
    after = requests.get(
        f"{world.base}/v1/accounts",
        timeout=10,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert after.status_code == 401
