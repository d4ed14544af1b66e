"""`Authorization: Bearer <key>`: who is calling. Missing, malformed, unknown, revoked
and expired credentials are told apart by `code`, always with a 401."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from oauth import services as identity
from oauth.models import APIKey
from tests.api.support import Api, Books, Party, problem

pytestmark = pytest.mark.django_db


def test_a_secret_key_reads_its_organizations_accounts(api: Api, alice: Party) -> None:
    assert api.get("/v1/accounts").status_code == 200


def test_no_authorization_header_is_401_authentication_required(anonymous: Api) -> None:
    response = anonymous.get("/v1/accounts")
    assert problem(response) == (401, "authentication_required", None)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_post_without_credentials_writes_nothing(anonymous: Api, alice: Party) -> None:
    before = Books.now()
    response = anonymous.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 1,
            "currency": "USD",
        },
    )
    assert problem(response) == (401, "authentication_required", None)
    assert Books.now() == before


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Token {secret}", "{secret}", "Bearer{secret}"],
    ids=["basic", "bearer-alone", "bearer-blank", "token-scheme", "no-scheme", "no-space"],
)
def test_a_malformed_authorization_header_is_401_invalid_api_key(
    api: Api, alice: Party, header: str
) -> None:
    response = api.using(None).get(
        "/v1/accounts", headers={"Authorization": header.format(secret=alice.secret)}
    )
    assert problem(response) == (401, "invalid_api_key", None)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_bearer_scheme_is_case_insensitive(api: Api, alice: Party) -> None:
    response = api.using(None).get(
        "/v1/accounts", headers={"Authorization": f"bearer {alice.secret}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "credential",
    ["sk_test_" + "x" * 32, "sk_live_" + "x" * 32, "rk_test_" + "y" * 32, "sk_test_", "rk_"],
    ids=["secret", "live-secret", "restricted", "bare-prefix", "rk"],
)
def test_an_unknown_key_is_401_invalid_api_key(api: Api, credential: str) -> None:
    assert problem(api.using(credential).get("/v1/accounts")) == (401, "invalid_api_key", None)


@pytest.mark.parametrize(
    "credential",
    ["pk_test_abc", "whsec_abc", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "x" * 5_000],
    ids=["publishable", "webhook-secret", "jwt", "long"],
)
def test_an_unknown_credential_of_another_shape_is_401(api: Api, credential: str) -> None:
    """Not shaped like a key, it is looked up as an OAuth access token."""
    status, code, _ = problem(api.using(credential).get("/v1/accounts"))
    assert status == 401
    assert code in ("invalid_api_key", "invalid_token")


def test_a_key_with_one_character_changed_is_invalid(api: Api, alice: Party) -> None:
    altered = alice.secret[:-1] + ("A" if alice.secret[-1] != "A" else "B")
    assert problem(api.using(altered).get("/v1/accounts")) == (401, "invalid_api_key", None)


def test_a_revoked_key_is_refused_at_once(api: Api, alice: Party) -> None:
    identity.api_key_revoke(api_key=alice.key)
    response = api.get("/v1/accounts")
    assert problem(response) == (401, "invalid_api_key", None)


def test_an_expired_key_is_401_api_key_expired(api: Api, alice: Party) -> None:
    APIKey.objects.filter(id=alice.key.id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert problem(api.get("/v1/accounts")) == (401, "api_key_expired", None)


def test_a_key_that_expires_later_still_works(api: Api, alice: Party) -> None:
    APIKey.objects.filter(id=alice.key.id).update(expires_at=timezone.now() + dt.timedelta(hours=1))
    assert api.get("/v1/accounts").status_code == 200


def test_a_rotated_key_and_its_successor_both_work_during_the_grace_period(
    api: Api, alice: Party
) -> None:
    successor = identity.api_key_rotate(api_key=alice.key, grace=dt.timedelta(hours=1))
    assert api.get("/v1/accounts").status_code == 200
    assert api.using(successor.secret).get("/v1/accounts").status_code == 200


def test_a_rotated_key_stops_when_the_grace_period_ends(api: Api, alice: Party) -> None:
    successor = identity.api_key_rotate(api_key=alice.key, grace=dt.timedelta(hours=1))
    APIKey.objects.filter(id=alice.key.id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert problem(api.get("/v1/accounts")) == (401, "api_key_expired", None)
    assert api.using(successor.secret).get("/v1/accounts").status_code == 200


def test_a_rotation_without_grace_ends_the_old_key_now(api: Api, alice: Party) -> None:
    successor = identity.api_key_rotate(api_key=alice.key, grace=dt.timedelta(0))
    assert problem(api.get("/v1/accounts")) == (401, "api_key_expired", None)
    assert api.using(successor.secret).get("/v1/accounts").status_code == 200


def test_the_successor_of_a_rotated_key_sees_the_same_organization(api: Api, alice: Party) -> None:
    successor = identity.api_key_rotate(api_key=alice.key, grace=dt.timedelta(hours=1))
    assert api.using(successor.secret).get("/v1/accounts").json() == api.get("/v1/accounts").json()


@pytest.mark.parametrize("name", ["api_key", "key", "access_token", "token", "secret"])
def test_a_credential_in_the_query_string_is_refused(api: Api, alice: Party, name: str) -> None:
    response = api.using(None).get("/v1/accounts", query={name: alice.secret})
    assert problem(response) == (401, "credential_in_query", None)


def test_a_credential_in_the_query_string_is_refused_even_beside_a_good_header(
    api: Api, alice: Party
) -> None:
    response = api.get("/v1/accounts", query={"access_token": alice.secret})
    assert problem(response) == (401, "credential_in_query", None)


def test_a_key_created_by_a_viewer_acts_for_the_organization(
    api: Api, alice: Party, bob_key: str
) -> None:
    transfer = api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 1,
            "currency": "USD",
        },
    ).json()
    assert api.using(bob_key).get(f"/v1/transfers/{transfer['id']}").json() == transfer


def test_using_a_key_records_when_it_was_last_used(api: Api, alice: Party) -> None:
    assert alice.key.last_used_at is None
    api.get("/v1/accounts")
    alice.key.refresh_from_db()
    assert alice.key.last_used_at is not None
    assert timezone.now() - alice.key.last_used_at < dt.timedelta(seconds=10)


# Modes -------------------------------------------------------------------------------


def test_a_live_key_lists_no_test_mode_account(api: Api, alice_live_key: str) -> None:
    assert api.using(alice_live_key).get("/v1/accounts").json()["data"] == []


@pytest.mark.parametrize("suffix", ["", "/balance", "/transactions"])
def test_a_live_key_does_not_find_a_test_mode_account(
    api: Api, alice: Party, alice_live_key: str, suffix: str
) -> None:
    response = api.using(alice_live_key).get(f"/v1/accounts/{alice.usd.id}{suffix}")
    assert problem(response) == (404, "not_found", None)


def test_a_live_key_does_not_find_a_test_mode_transfer(
    api: Api, alice: Party, alice_live_key: str
) -> None:
    transfer = api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 1,
            "currency": "USD",
            "settlement": "manual",
        },
    ).json()["id"]
    live = api.using(alice_live_key)
    assert problem(live.get(f"/v1/transfers/{transfer}")) == (404, "not_found", None)
    assert live.get("/v1/transfers").json()["data"] == []
    before = Books.now()
    for action in ("settle", "void", "reverse"):
        assert problem(live.post(f"/v1/transfers/{transfer}/{action}")) == (404, "not_found", None)
    assert Books.now() == before


@pytest.mark.parametrize("side", ["source_account", "destination_account"])
def test_a_live_key_cannot_move_test_money(
    api: Api, alice: Party, alice_live_key: str, side: str
) -> None:
    live_account = api.using(alice_live_key).post("/v1/accounts", {"currency": "USD"}).json()["id"]
    body = {
        "source_account": live_account,
        "destination_account": live_account,
        "amount": 1,
        "currency": "USD",
        side: alice.usd.id if side == "source_account" else alice.payee.id,
    }
    before = Books.now()
    response = api.using(alice_live_key).post("/v1/transfers", body)
    assert problem(response) == (404, "not_found", side)
    assert Books.now() == before


def test_an_account_opened_with_a_live_key_is_live(api: Api, alice_live_key: str) -> None:
    body = api.using(alice_live_key).post("/v1/accounts", {"currency": "USD"}).json()
    assert body["livemode"] is True
    assert problem(api.get(f"/v1/accounts/{body['id']}")) == (404, "not_found", None)
