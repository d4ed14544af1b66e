"""Rate limits, one request at a time: per credential (the platform's default or the
organization's own) and per client address, in one-second windows. The exact count
under concurrency is in test_concurrency.py."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from tests.api.support import Api, Books, Party, problem

pytestmark = pytest.mark.django_db


def fresh_second() -> None:
    """Start just after a whole second, so that a handful of requests share a window."""
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)


def test_every_answer_says_how_much_of_the_limit_is_left(api: Api, settings: Any) -> None:
    settings.API_RATE_LIMIT = 50
    fresh_second()
    first = api.get("/v1/accounts")
    second = api.get("/v1/accounts")
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("50", "49")
    assert (second.headers["RateLimit-Limit"], second.headers["RateLimit-Remaining"]) == (
        "50",
        "48",
    )
    assert first.headers["RateLimit-Reset"] == "1"


def test_the_request_over_the_limit_is_429_with_retry_after(api: Api, settings: Any) -> None:
    settings.API_RATE_LIMIT = 3
    fresh_second()
    statuses = [api.get("/v1/accounts").status_code for _ in range(3)]
    refused = api.get("/v1/accounts")
    assert statuses == [200, 200, 200]
    assert problem(refused) == (429, "rate_limited", None)
    assert refused.headers["Retry-After"] == "1"
    assert (refused.headers["RateLimit-Limit"], refused.headers["RateLimit-Remaining"]) == (
        "3",
        "0",
    )


def test_a_refused_post_writes_nothing(api: Api, alice: Party, settings: Any) -> None:
    settings.API_RATE_LIMIT = 1
    fresh_second()
    api.get("/v1/accounts")
    before = Books.now()
    response = api.post(
        "/v1/transfers",
        {
            "source_account": alice.usd.id,
            "destination_account": alice.payee.id,
            "amount": 100,
            "currency": "USD",
        },
    )
    assert problem(response) == (429, "rate_limited", None)
    assert Books.now() == before


def test_each_credential_has_its_own_limit(api: Api, restricted_key: str, settings: Any) -> None:
    settings.API_RATE_LIMIT = 2
    fresh_second()
    for _ in range(2):
        api.get("/v1/accounts")
    assert api.get("/v1/accounts").status_code == 429
    assert api.using(restricted_key).get("/v1/accounts").status_code == 200


def test_an_organizations_own_limit_replaces_the_platforms(api: Api, alice: Party) -> None:
    alice.organization.api_rate_limit = 3
    alice.organization.save(update_fields=["api_rate_limit"])
    fresh_second()
    statuses = [api.get("/v1/accounts").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_one_address_is_limited_before_any_credential_is_read(
    anonymous: Api, settings: Any
) -> None:
    settings.API_IP_RATE_LIMIT = 2
    fresh_second()
    statuses = [anonymous.get("/v1/accounts").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
