"""API4, rate limits under a concurrent flood: fifty requests released at once get
exactly the limit through — per credential (here an organization's own limit of ten)
and per address — in one process (threads) and across gunicorn's worker processes
(with Redis, where the counters live). A flood of transfers moves money exactly as
many times as the limit allows. One request at a time is in tests/api/test_rate_limits.py.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import requests
from django.db import connection, connections

from ledger.models import Transfer
from oauth import services as identity
from tests.api.support import OpenApi, make_party, problem
from tests.attacks.support import Api

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
T = TypeVar("T")
FLOOD = 50
LIMIT = 10
WINDOW = 3600  # seconds: long enough that a burst never straddles two windows


def released_together(count: int, work: Callable[[int], T]) -> list[T]:
    """`work(i)` in `count` threads that start at one barrier, each with its own
    database connection (opened before the barrier, closed after)."""
    barrier = threading.Barrier(count, action=_not_at_the_end_of_a_window)

    def run(index: int) -> T:
        try:
            connection.ensure_connection()
            barrier.wait()
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _not_at_the_end_of_a_window() -> None:
    left = math.ceil(time.time() / WINDOW) * WINDOW - time.time()
    if left < 60:
        time.sleep(left + 0.05)


def a_fresh_organization(limit: int) -> Any:
    """An organization whose own limit is `limit`, with a key no request has used."""
    party = make_party(f"flood{random.randrange(10**9)}")
    party.organization.api_rate_limit = limit
    party.organization.save(update_fields=["api_rate_limit"])
    return party


def test_a_flood_of_transfers_moves_money_exactly_limit_times(
    openapi: OpenApi, settings: Any
) -> None:
    settings.API_RATE_LIMIT_WINDOW_SECONDS = WINDOW
    party = a_fresh_organization(LIMIT)
    body = {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 1,
        "currency": "USD",
        "settlement": "manual",
    }

    answers = released_together(
        FLOOD, lambda _: Api(openapi, party.secret).post("/v1/transfers", body)
    )

    assert Counter(a.status_code for a in answers) == {201: LIMIT, 429: FLOOD - LIMIT}
    for answer in answers:
        assert answer.headers["RateLimit-Limit"] == str(LIMIT)
        if answer.status_code == 429:
            assert problem(answer) == (429, "rate_limited", None)
            assert answer.headers["RateLimit-Remaining"] == "0"
            assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW
    assert Transfer.objects.filter(source_id=party.usd.id).count() == LIMIT


def test_a_flood_from_one_address_gets_exactly_its_limit(openapi: OpenApi, settings: Any) -> None:
    """Before any credential is read: a flood of anonymous requests is limited too."""
    settings.API_RATE_LIMIT_WINDOW_SECONDS = WINDOW
    settings.API_IP_RATE_LIMIT = LIMIT
    address = f"198.18.{random.randrange(256)}.{random.randrange(256)}"

    def get(_: int) -> Any:
        api = Api(openapi, None)
        api.client.defaults["REMOTE_ADDR"] = address
        return api.get("/v1/accounts")

    answers = released_together(FLOOD, get)

    assert Counter(problem(a)[:2] for a in answers) == {
        (401, "authentication_required"): LIMIT,
        (429, "rate_limited"): FLOOD - LIMIT,
    }


@pytest.mark.redis
def test_a_flood_across_server_processes_gets_exactly_the_limit(server: str) -> None:
    """Two gunicorn workers, one counter in Redis: still exactly the limit."""
    party = a_fresh_organization(LIMIT)
    key = identity.api_key_create(organization=party.organization, livemode=False).secret

    def get(_: int) -> requests.Response:
        return requests.get(
            f"{server}/v1/accounts", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    barrier = threading.Barrier(FLOOD, action=_not_at_the_end_of_a_window)

    def run(index: int) -> requests.Response:
        barrier.wait()
        return get(index)

    with ThreadPoolExecutor(max_workers=FLOOD) as pool:
        answers = list(pool.map(run, range(FLOOD)))

    assert Counter(a.status_code for a in answers) == {200: LIMIT, 429: FLOOD - LIMIT}
    assert {a.headers["RateLimit-Limit"] for a in answers} == {str(LIMIT)}
