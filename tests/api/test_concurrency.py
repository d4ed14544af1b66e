"""Real threads, real PostgreSQL (and Redis for the rate limit): what holds one request
at a time must hold for twenty at once."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from django.db import connection, connections
from django.http import HttpResponse

from ledger.models import Transfer

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

from tests.api.support import Api, OpenApi, Party, balance, problem

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
T = TypeVar("T")


def in_threads(
    count: int, work: Callable[[int], T], *, release: Callable[[], None] | None = None
) -> list[T | BaseException]:
    """Run work(i) in `count` threads released together (after `release` ran, if
    given); each thread has its own database connection, opened before the release
    and closed when it is done."""
    barrier = threading.Barrier(count, action=release)

    def run(index: int) -> T | BaseException:
        try:
            connection.ensure_connection()
            barrier.wait()
            return work(index)
        except BaseException as exc:
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_identical_posts_with_one_key_make_one_transfer(
    openapi: OpenApi, alice: Party
) -> None:
    body = {
        "source_account": alice.usd.id,
        "destination_account": alice.payee.id,
        "amount": 2_550,
        "currency": "USD",
        "settlement": "manual",
    }

    def post(_: int) -> TestResponse:
        return Api(openapi, alice.secret).post("/v1/transfers", body, idempotency_key="order-1042")

    outcomes = in_threads(20, post)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == [], errors[:3]
    responses = [o for o in outcomes if isinstance(o, HttpResponse)]
    firsts = [
        r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    in_use = [r for r in responses if r.status_code == 409]
    assert len(firsts) == 1, Counter(r.status_code for r in responses)
    [first] = firsts
    assert len(firsts) + len(replays) + len(in_use) == 20
    assert all(r.status_code == 201 and r.content == first.content for r in replays)
    assert all(problem(r) == (409, "idempotency_key_in_use", None) for r in in_use)
    assert Transfer.objects.filter(source_id=alice.usd.id).count() == 1
    assert Transfer.objects.get(source_id=alice.usd.id).id == json.loads(first.content)["id"]
    assert balance(alice.usd) == (1_000_000, 2_550, 997_450)


def test_a_409_while_the_first_runs_asks_the_caller_to_retry(
    openapi: OpenApi, alice: Party
) -> None:
    body = {"currency": "USD"}

    def post(_: int) -> TestResponse:
        return Api(openapi, alice.secret).post("/v1/accounts", body, idempotency_key="acct-1")

    outcomes = in_threads(20, post)
    responses = [o for o in outcomes if isinstance(o, HttpResponse)]
    assert len(responses) == 20, [o for o in outcomes if isinstance(o, BaseException)][:3]
    for response in responses:
        if response.status_code == 409:
            assert response.headers["Retry-After"] == "1"
    assert len({json.loads(r.content)["id"] for r in responses if r.status_code == 201}) == 1


# A minute-long window for these tests: 50 requests on a loaded 2-core machine can take
# more than a second, and the test is about exactness, not about the window's length.
WINDOW = 60


def wait_for_a_fresh_window() -> None:
    """If the current window ends soon, wait for the next, so that all the requests
    land in one window."""
    now = time.time()
    left = math.ceil(now / WINDOW) * WINDOW - now
    if left < 20:
        time.sleep(left + 0.05)


@pytest.mark.redis
def test_an_organizations_rate_limit_of_ten_lets_exactly_ten_of_fifty_through(
    openapi: OpenApi, alice: Party, settings: Any
) -> None:
    alice.organization.api_rate_limit = 10
    alice.organization.save(update_fields=["api_rate_limit"])
    assert Api(openapi, alice.secret).get("/v1/accounts").status_code == 200, "warm up"
    settings.API_RATE_LIMIT_WINDOW_SECONDS = WINDOW  # a window the warm-up did not count in

    def get(_: int) -> tuple[float, TestResponse]:
        response = Api(openapi, alice.secret).get("/v1/accounts")
        return time.time(), response

    outcomes = in_threads(50, get, release=wait_for_a_fresh_window)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == [], errors[:3]
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    statuses = Counter(r.status_code for _, r in answered)
    seconds = sorted({int(at) for at, _ in answered})
    assert statuses == {200: 10, 429: 40}, f"answered within the seconds {seconds}"
    for _, response in answered:
        assert response.headers["RateLimit-Limit"] == "10"
        if response.status_code == 429:
            assert problem(response) == (429, "rate_limited", None)
            assert response.headers["RateLimit-Remaining"] == "0"
            assert response.headers["Retry-After"] == response.headers["RateLimit-Reset"]
            assert 1 <= int(response.headers["Retry-After"]) <= WINDOW


@pytest.mark.redis
def test_the_platform_rate_limit_is_exact_under_concurrency(
    openapi: OpenApi, alice: Party, settings: Any
) -> None:
    settings.API_RATE_LIMIT = 10
    assert Api(openapi, alice.secret).get("/v1/accounts").status_code == 200, "warm up"
    settings.API_RATE_LIMIT_WINDOW_SECONDS = WINDOW  # a window the warm-up did not count in

    def get(_: int) -> TestResponse:
        return Api(openapi, alice.secret).get("/v1/accounts")

    outcomes = in_threads(50, get, release=wait_for_a_fresh_window)
    responses = [o for o in outcomes if isinstance(o, HttpResponse)]
    assert len(responses) == 50, [o for o in outcomes if isinstance(o, BaseException)][:3]
    assert Counter(r.status_code for r in responses) == {200: 10, 429: 40}
    waits = {int(r.headers["Retry-After"]) for r in responses if r.status_code == 429}
    assert all(1 <= wait <= WINDOW for wait in waits)
