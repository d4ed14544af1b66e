"""The attack suite: the OWASP API Security Top 10 (2023) tried against every operation
of the served OpenAPI schema.

Who is who: alice owns organization A, with objects in test mode (her sandbox) and in
live mode; charlie owns organization B, shaped the same. Every attack is one test id, so
the count pytest prints is the count of attacks tried; the session ends with a line per
OWASP category (and writes it to var/attacks/summary.json).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from ledger import services as ledger
from oauth import services as identity
from oauth.models import Consent, Scope
from payments import services as payments
from payments import webhooks
from tests.api.support import OpenApi, Party, make_party
from tests.attacks.support import (
    PUBLIC_URL,
    Api,
    Objects,
    SchemaChecker,
    oauth_token,
    objects_create,
    served_schema,
)
from tests.live import gunicorn

ROOT = Path(__file__).resolve().parent.parent.parent
SUMMARY = ROOT / "var" / "attacks" / "summary.json"
CATEGORIES = {
    "test_baseline": "API0 baseline: each request works for its owner (not an attack)",
    "test_api1_object_level_authorization": "API1 broken object level authorization",
    "test_api2_authentication": "API2 broken authentication",
    "test_api3_property_level_authorization": "API3 broken object property level authorization",
    "test_api4_resource_consumption": "API4 unrestricted resource consumption",
    "test_api4_rate_limits": "API4 unrestricted resource consumption",
    "test_api5_function_level_authorization": "API5 broken function level authorization",
    "test_api7_ssrf": "API7 server side request forgery",
    "test_api8_misconfiguration": "API8 security misconfiguration",
    "test_api8_live_server": "API8 security misconfiguration",
    "test_api8_dependency_audit": "API8 security misconfiguration",
    "test_api9_inventory": "API9 improper inventory management",
    "test_api10_unsafe_consumption": "API10 unsafe consumption of APIs (webhook receivers)",
}


@pytest.fixture(scope="session")
def openapi(django_db_blocker: Any) -> OpenApi:
    with django_db_blocker.unblock():
        return SchemaChecker(served_schema())


@pytest.fixture(autouse=True)
def generous_rate_limits(settings: Any) -> None:
    """Hundreds of attacks a second come from one address; the rate limit attacks set
    their own limits. Webhook targets on loopback are refused, as in production."""
    settings.API_RATE_LIMIT = 1_000_000
    settings.API_IP_RATE_LIMIT = 1_000_000
    settings.WEBHOOKS_ALLOW_LOOPBACK = False


@dataclass(frozen=True)
class World:
    alice: Party
    charlie: Party
    alices: Objects  # alice's test-mode objects
    alices_live: Objects
    charlies: Objects
    hidden: Objects  # alice's, on accounts she does not share with the application
    alice_live_key: str


def world_build() -> World:
    alice, charlie = make_party("alice"), make_party("charlie")
    alices = objects_create(alice)
    source = ledger.account_open(holder=alice.holder, livemode=False, currency="USD")
    payee = ledger.account_open(holder=alice.holder, livemode=False, currency="USD")
    payments.test_account_fund(holder=alice.holder, account_id=source.id, amount=100_000)
    return World(
        alice=alice,
        charlie=charlie,
        alices=alices,
        alices_live=objects_create(alice, livemode=True),
        charlies=objects_create(charlie),
        hidden=objects_create(alice, accounts=(source, payee)),
        alice_live_key=identity.api_key_create(
            organization=alice.organization, livemode=True, created_by=alice.user
        ).secret,
    )


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once per module inside a transaction that is rolled back at its end; each
    test runs in a savepoint within it (as Django's setUpTestData does), so an attack
    that did write something cannot leak into the next one."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = world_build()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def alice(world: World, db: None) -> Party:
    return world.alice


@pytest.fixture
def charlie(world: World, db: None) -> Party:
    return world.charlie


@pytest.fixture
def alices(world: World, db: None) -> Objects:
    return world.alices


@pytest.fixture
def alices_live(world: World, db: None) -> Objects:
    return world.alices_live


@pytest.fixture
def charlies(world: World, db: None) -> Objects:
    return world.charlies


@pytest.fixture
def hidden(world: World, db: None) -> Objects:
    return world.hidden


@pytest.fixture
def alice_live_key(world: World, db: None) -> str:
    return world.alice_live_key


@pytest.fixture
def api(openapi: OpenApi, alice: Party) -> Api:
    """alice's test-mode secret key; every answer checked against the schema."""
    return Api(openapi, alice.secret)


@dataclass(frozen=True)
class Grant:
    token: str
    # `alices`, but with an endpoint made through the token: the grant's own.
    objects: Objects


@pytest.fixture(scope="module")
def grant(world: World, django_db_blocker: Any) -> Grant:
    """An OAuth token from the real flow, for an application alice granted every scope
    on her `alices` accounts only, and a webhook endpoint made under that grant (built
    in the module's transaction, like `world`)."""
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=hashers):
        token = oauth_token(
            user=world.alice.user,
            organization=world.alice.organization,
            account_ids=[world.alices.account, world.alices.payee],
            scopes=list(Scope.values),
        )
        consent = Consent.objects.get(user=world.alice.user, revoked_at=None)
        endpoint = webhooks.webhook_endpoint_create(
            organization_id=world.alice.holder,
            livemode=False,
            url=PUBLIC_URL,
            enabled_events=["*"],
            consent_id=consent.id,
        )
    return Grant(token, replace(world.alices, endpoint=endpoint.id))


@pytest.fixture
def app(openapi: OpenApi, grant: Grant, db: None) -> Api:
    """The application alice granted every scope on her `alices` accounts only."""
    return Api(openapi, grant.token)


@pytest.fixture
def granted(grant: Grant, db: None) -> Objects:
    """What the application may name: alice's shared accounts and their transfers and
    events, and the endpoint made under its grant (not the one alice made herself)."""
    return grant.objects


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[str]:
    """gunicorn (two worker processes) on the test database, as production runs it
    (for the module that asks, so that it never outlives the attacks):
    loopback webhook targets refused, rate limits counted in hour-long windows (so that
    a burst never straddles two), the per-address limit out of the way."""
    with gunicorn(
        WEBHOOKS_ALLOW_LOOPBACK="false",
        API_RATE_LIMIT_WINDOW_SECONDS="3600",
        API_IP_RATE_LIMIT="1000000",
    ) as base:
        yield base


# The count ------------------------------------------------------------------------------

_started = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    outcomes: dict[str, Counter[str]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid.startswith("tests/attacks/"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            module = Path(nodeid.split("::")[0]).stem
            category = CATEGORIES.get(module, module)
            outcomes.setdefault(category, Counter())[outcome] += 1
    if not outcomes:
        return
    total: Counter[str] = Counter()
    terminalreporter.section("attacks tried (OWASP API Security Top 10, 2023)")
    for category in sorted(outcomes, key=lambda c: (len(c.split()[0]), c)):
        counts = outcomes[category]
        failed = counts["failed"] + counts["error"]
        if not category.startswith("API0"):
            total.update(counts)
        terminalreporter.write_line(
            f"{category:<58} {sum(counts.values()):>5} tried, {counts['passed']:>5} held"
            + (f", {failed} NOT HELD" if failed else "")
            + (f", {counts['skipped']} skipped" if counts["skipped"] else "")
        )
    tried, failed = sum(total.values()), total["failed"] + total["error"]
    terminalreporter.write_line(
        f"{'attacks tried (the baseline aside)':<58} {tried:>5} tried, {total['passed']:>5} held, "
        f"{failed} not held, {total['skipped']} skipped"
    )
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(
        json.dumps(
            {
                "attacks": tried,
                "held": total["passed"],
                "not_held": failed,
                "skipped": total["skipped"],
                "baseline": dict(outcomes.get(CATEGORIES["test_baseline"], Counter())),
                "seconds": round(time.monotonic() - _started, 1),
                "by_category": {c: dict(n) for c, n in sorted(outcomes.items())},
            },
            indent=2,
        )
        + "\n"
    )
