from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from django.test import RequestFactory, override_settings

from ledger.models import Account
from ledger.selectors import account_balance
from ledger.verify import ledger_verify
from oauth.models import APIKey, Application, Membership, Organization, User
from oauth.services import api_key_digest

pytestmark = pytest.mark.django_db


def seed() -> dict[str, Any]:
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    world: dict[str, Any] = json.loads(lines[0])
    return world


def test_seed_prints_the_contract_shape() -> None:
    world = seed()
    assert set(world) >= {"base_url", "organizations", "oauth_client", "users"}
    assert world["base_url"].startswith("http")
    assert len(world["organizations"]) >= 2
    org_ids = {org["id"] for org in world["organizations"]}
    assert all(org_id.startswith("org_") for org_id in org_ids)
    assert set(world["oauth_client"]) == {"client_id", "client_secret", "redirect_uri"}
    assert world["oauth_client"]["redirect_uri"].startswith("http://127.0.0.1:")
    for user in world["users"]:
        assert set(user) == {"username", "password", "organization", "role", "is_staff"}
        assert user["organization"] in org_ids
    owners = {u["organization"] for u in world["users"] if u["role"] == "owner"}
    assert owners == org_ids, "one owner per organization"
    assert any(u["is_staff"] for u in world["users"]), "a staff user for /admin/"


def test_each_organization_has_funded_test_accounts_one_in_usd() -> None:
    world = seed()
    for organization in world["organizations"]:
        key = APIKey.objects.get(digest=api_key_digest(organization["test_secret_key"]))
        assert key.organization_id == organization["id"]
        assert not key.livemode
        assert organization["test_secret_key"].startswith("sk_test_")
        accounts = organization["accounts"]
        assert len(accounts) >= 2
        assert "USD" in {account["currency"] for account in accounts}
        for account in accounts:
            assert account["id"].startswith("acct_")
            balance = account_balance(account_id=account["id"], holder=organization["id"])
            assert balance.currency == account["currency"]
            assert balance.available > 0
    assert ledger_verify() is None


def test_the_printed_credentials_work() -> None:
    world = seed()
    for user in world["users"]:
        request = RequestFactory().post("/login/")
        assert (
            authenticate(request, username=user["username"], password=user["password"]) is not None
        )
    client = world["oauth_client"]
    application = Application.objects.get(client_id=client["client_id"])
    assert application.client_secret != client["client_secret"], "stored hashed"
    assert check_password(client["client_secret"], application.client_secret)
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    staff = next(u for u in world["users"] if u["is_staff"])
    assert application.organization_id == staff["organization"], "the merchant's app"


def test_seeding_twice_creates_nothing_new() -> None:
    first = seed()
    counts = (
        Organization.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        Application.objects.count(),
    )
    balances = {a.id: a.posted for a in Account.objects.all()}
    second = seed()
    assert {a.id: a.posted for a in Account.objects.all()} == balances, "no money added twice"
    assert (
        Organization.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        Application.objects.count(),
    ) == counts
    assert [o["id"] for o in second["organizations"]] == [o["id"] for o in first["organizations"]]
    assert [o["accounts"] for o in second["organizations"]] == [
        o["accounts"] for o in first["organizations"]
    ]
    live_keys = APIKey.objects.filter(revoked_at=None, name__startswith="Demo key")
    assert live_keys.count() == len(second["organizations"]), "the previous demo keys retired"
    assert second["oauth_client"]["client_id"] == first["oauth_client"]["client_id"]
    # A fresh secret each run (only its hash is kept); the new one is the one that works.
    application = Application.objects.get(client_id=second["oauth_client"]["client_id"])
    assert check_password(second["oauth_client"]["client_secret"], application.client_secret)
    assert not check_password(first["oauth_client"]["client_secret"], application.client_secret)


@override_settings(PRODUCTION=True)
def test_seed_refuses_to_run_in_production() -> None:
    with pytest.raises(CommandError, match="not in production"):
        call_command("seed_demo", "--json", stdout=StringIO())
    assert not User.objects.exists()
