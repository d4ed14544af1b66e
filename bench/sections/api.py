"""The API section: /v1/ over HTTP, served by gunicorn on PostgreSQL, against the
framework's ceiling (a trivial DRF view served by the same gunicorn), and its latency
at half its peak rate."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import redis
from django.conf import settings
from django.db import connection
from django.http.response import HttpResponseBase
from django.test import Client, override_settings

from bench import api_anatomy, cpu, loadgen
from bench.api_world import Tenant, open_tenant
from bench.context import Context
from bench.ledger_world import CURRENCY
from bench.report import Figure, SectionResult, progress
from bench.server import Gunicorn, Running, serve
from bench.settings_api import MEMORY_BROKER
from config.celery import app as celery_app
from payments import requestlog


@dataclass(frozen=True)
class Sizes:
    accounts: int = 1_000
    # gunicorn: 2 processes per core, 2 threads each (see docs/benchmarks.md).
    workers: int = 4
    threads: int = 2
    # Closed loop: twice as many connections as the server has threads.
    connections: int = 16
    seconds: int = 10  # each peak run
    warmup_seconds: int = 2  # each endpoint, once, before the first round
    latency_seconds: int = 20  # each open-loop run at half the peak
    latency_connections: int = 32
    # Requests through Django's test client for the round trips and their times.
    anatomy_samples: int = 200
    # The peak figures alternate their sides this many times (medians).
    rounds: int = 3


FULL = Sizes()
# Three short rounds rather than one long one: a few seconds of another process's work
# then falls on one sample of each side, and the median leaves it out.
QUICK = replace(
    FULL,
    seconds=2,
    warmup_seconds=1,
    latency_seconds=4,
    anatomy_samples=50,
    rounds=3,
)

# The rate limits (per credential, per client IP) raised far above anything the load
# generator can reach: every request sent is one the API serves.
RAISED = 1_000_000_000
RAISED_LIMITS = {"API_RATE_LIMIT": str(RAISED), "API_IP_RATE_LIMIT": str(RAISED)}
SERVER_SETTINGS = "bench.settings_api"


def run(context: Context) -> SectionResult:
    sizes = QUICK if context.quick else FULL
    result = SectionResult("api", sizes=asdict(sizes))
    progress(f"api: sizes {asdict(sizes)}")
    progress(f"api: an organization, its test-mode secret key, {sizes.accounts} funded accounts")
    tenant = open_tenant(sizes.accounts)
    _forget_request_log()
    calls = _Calls(tenant)
    _anatomy(sizes, tenant, result)
    server = Gunicorn(sizes.workers, sizes.threads)
    progress(f"api: {server.describe()}, {SERVER_SETTINGS}, rate limits raised to {RAISED:,}")
    try:
        with serve(server, settings=SERVER_SETTINGS, env=RAISED_LIMITS) as running:
            peaks = _peaks(running, sizes, calls, result)
            _latencies(running.port, sizes, calls, peaks, result)
    finally:
        _forget_request_log()
    return result


# The requests ----------------------------------------------------------------------------


class _Calls:
    """Request makers for the load generator: a fresh one for every run, so that every
    transfer carries an Idempotency-Key no other request has used."""

    def __init__(self, tenant: Tenant) -> None:
        self.accounts = tenant.account_ids
        self.auth = {"Authorization": f"Bearer {tenant.secret_key}"}
        self.runs = itertools.count(1)

    def ceiling(self) -> loadgen.Requests:
        request = loadgen.get("/bench/ok", {})
        return lambda index: request

    def ceiling_v1(self) -> loadgen.Requests:
        request = loadgen.get("/v1/bench/ok", {})
        return lambda index: request

    def transfer(self) -> loadgen.Requests:
        run = next(self.runs)
        rng = random.Random(run)
        accounts = self.accounts

        def request(index: int) -> bytes:
            source, destination = rng.sample(accounts, 2)
            body = json.dumps(
                {
                    "source_account": source,
                    "destination_account": destination,
                    "amount": rng.randint(1, 100),
                    "currency": CURRENCY,
                }
            )
            headers = {**self.auth, "Idempotency-Key": f"bench-{run}-{index}"}
            return loadgen.post_json("/v1/transfers", headers, body.encode())

        return request

    def balance(self) -> loadgen.Requests:
        rng = random.Random(next(self.runs))
        requests = [loadgen.get(f"/v1/accounts/{a}/balance", self.auth) for a in self.accounts]
        return lambda index: rng.choice(requests)


@dataclass(frozen=True)
class _Endpoint:
    label: str
    make: Callable[[], loadgen.Requests]
    expected: int


def _endpoints(calls: _Calls) -> dict[str, _Endpoint]:
    return {
        "ceiling": _Endpoint("GET /bench/ok (the ceiling)", calls.ceiling, 200),
        "ceiling_v1": _Endpoint("GET /v1/bench/ok", calls.ceiling_v1, 200),
        "transfer": _Endpoint("POST /v1/transfers", calls.transfer, 201),
        "balance": _Endpoint("GET /v1/accounts/{id}/balance", calls.balance, 200),
    }


# The figures ---------------------------------------------------------------------------


def _anatomy(sizes: Sizes, tenant: Tenant, result: SectionResult) -> None:
    """Round trips and where the time goes, one request at a time in this process."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {tenant.secret_key}")
    rng = random.Random(0)
    accounts = tenant.account_ids

    def transfer(index: int) -> HttpResponseBase:
        source, destination = rng.sample(accounts, 2)
        body = {"source_account": source, "destination_account": destination, "amount": 1}
        return client.post(
            "/v1/transfers",
            {**body, "currency": CURRENCY},
            content_type="application/json",
            headers={"Idempotency-Key": f"bench-anatomy-{index}"},
        )

    def balance(index: int) -> HttpResponseBase:
        return client.get(f"/v1/accounts/{rng.choice(accounts)}/balance")

    progress(f"api: round trips and time split, {sizes.anatomy_samples} requests in-process")
    with override_settings(API_RATE_LIMIT=RAISED, API_IP_RATE_LIMIT=RAISED), _memory_broker():
        for name, call, expected in (("transfer", transfer, 201), ("balance", balance, 200)):
            found = api_anatomy.measure(call, expected, sizes.anatomy_samples)
            result.raw |= {
                f"{name}_db_round_trips": found.db_round_trips,
                f"{name}_redis_round_trips": found.redis_round_trips,
                f"{name}_in_process_ms": found.total_ms,
                f"{name}_db_wait_ms": found.db_ms,
                f"{name}_redis_wait_ms": found.redis_ms,
                f"{name}_python_ms": found.python_ms,
            }
            progress(
                f"api:   {name}: {found.db_round_trips:g} PostgreSQL + "
                f"{found.redis_round_trips:g} Redis round trips; {found.total_ms:.2f} ms = "
                f"{found.db_ms:.2f} waiting on PostgreSQL + {found.redis_ms:.2f} on Redis + "
                f"{found.python_ms:.2f} Python"
            )
            progress(f"api:   {name}: " + " | ".join(found.trips))


def _peaks(server: Running, sizes: Sizes, calls: _Calls, result: SectionResult) -> dict[str, float]:
    """Each endpoint's peak rate, closed loop; the endpoints take turns, once per round,
    so that the machine's drift falls on all of them alike; medians over the rounds."""
    endpoints = _endpoints(calls)
    for endpoint in endpoints.values():
        progress(f"api: warm-up, {endpoint.label}, {sizes.warmup_seconds}s")
        _closed(server, sizes, endpoint, sizes.warmup_seconds)
    seen: dict[str, list[float]] = defaultdict(list)
    for round_ in range(1, sizes.rounds + 1):
        for name, endpoint in endpoints.items():
            progress(
                f"api: round {round_}/{sizes.rounds}: {endpoint.label}, "
                f"{sizes.connections} connections, {sizes.seconds}s"
            )
            for key, value in _closed(server, sizes, endpoint, sizes.seconds).items():
                seen[f"{name}_{key}"].append(value)
    peaks = {key: statistics.median(values) for key, values in seen.items()}
    result.raw |= {key: value for key, value in peaks.items() if not key.endswith("loadgen_cpu")}
    # The load generator's share of one core while it drove the ceiling.
    result.raw["loadgen_cpu_at_ceiling"] = peaks["ceiling_loadgen_cpu"]
    ceiling, ceiling_cpu = peaks["ceiling_rps"], peaks["ceiling_gunicorn_cpu_ms"]
    for name in ("transfer", "balance"):
        mine = peaks[f"{name}_rps"]
        trips = (
            f"{result.raw[f'{name}_db_round_trips']:g} PostgreSQL + "
            f"{result.raw[f'{name}_redis_round_trips']:g} Redis round trips"
        )
        cost = f"gunicorn CPU {peaks[f'{name}_gunicorn_cpu_ms']:.1f} vs {ceiling_cpu:.1f} ms"
        result.figures.append(
            Figure(
                f"api_{name}_vs_ceiling",
                mine / ceiling if ceiling else None,
                f"{mine:,.0f} vs {ceiling:,.0f} requests/s; {trips}; {cost} per request",
            )
        )
    return peaks


def _latencies(
    port: int, sizes: Sizes, calls: _Calls, peaks: dict[str, float], result: SectionResult
) -> None:
    endpoints = _endpoints(calls)
    found: dict[str, tuple[float, float, float]] = {}
    for name in ("transfer", "balance"):
        endpoint = endpoints[name]
        rate = max(1.0, peaks[f"{name}_rps"] / 2)
        progress(
            f"api: latency, {endpoint.label}, open loop at {rate:,.0f}/s (half the peak), "
            f"{sizes.latency_seconds}s"
        )
        load = loadgen.open_loop(
            port,
            endpoint.make(),
            rate=rate,
            seconds=sizes.latency_seconds,
            connections=sizes.latency_connections,
            expected=endpoint.expected,
        )
        _report_failures(load)
        p50, p99 = load.percentile_ms(50), load.percentile_ms(99)
        progress(f"api:   {load.done:,} answers; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        found[name] = (rate, p50, p99)
        result.raw |= {
            f"{name}_offered_rps": rate,
            f"{name}_p50_ms": p50,
            f"{name}_p99_ms": p99,
        }
    (rate, p50, p99), (balance_rate, balance_p50, balance_p99) = found["transfer"], found["balance"]
    result.figures.append(
        Figure(
            "api_transfer_p99_ms",
            p99,
            f"p50 {p50:.1f} ms at {rate:,.0f} transfers/s; balance p50 {balance_p50:.1f} ms, "
            f"p99 {balance_p99:.1f} ms at {balance_rate:,.0f}/s",
        )
    )


# Helpers -------------------------------------------------------------------------------


def _closed(server: Running, sizes: Sizes, endpoint: _Endpoint, seconds: float) -> dict[str, float]:
    """One closed-loop run: answers per second, and CPU milliseconds per answer spent by
    gunicorn (master and workers) and by the PostgreSQL sessions it holds; the load
    generator's own CPU as a share of one core."""
    before = cpu.tree_seconds(server.pid), {pid: cpu.seconds(pid) for pid in _sessions()}
    load = loadgen.closed_loop(
        server.port,
        endpoint.make(),
        connections=sizes.connections,
        seconds=seconds,
        expected=endpoint.expected,
    )
    gunicorn = cpu.tree_seconds(server.pid) - before[0]
    # A session opened during the run counts whole (CONN_MAX_AGE renews them every
    # minute); one that closed during the run is missed.
    postgres = sum(cpu.seconds(pid) - before[1].get(pid, 0.0) for pid in _sessions())
    _report_failures(load)
    answers = max(1, load.done)
    found = {
        "rps": load.rate(),
        "gunicorn_cpu_ms": gunicorn * 1000 / answers,
        "postgres_cpu_ms": postgres * 1000 / answers,
        "loadgen_cpu": load.cpu_seconds / load.seconds,
    }
    progress(
        f"api:   {found['rps']:,.0f}/s; CPU per answer: gunicorn "
        f"{found['gunicorn_cpu_ms']:.2f} ms, PostgreSQL {found['postgres_cpu_ms']:.2f} ms; "
        f"load generator {found['loadgen_cpu']:.0%} of a core"
    )
    return found


def _sessions() -> list[int]:
    """The server processes of the other sessions on the benchmark database: gunicorn's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _report_failures(load: loadgen.Load) -> None:
    for error, count in load.failures().most_common():
        progress(f"api:   {count} failed: {error}")


@contextmanager
def _memory_broker() -> Iterator[None]:
    """This process's Celery app on the in-process broker bench.settings_api gives
    gunicorn, so that the settlement nudges of the requests measured here do not wait in
    the Redis broker for a worker that is not running yet."""
    broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = MEMORY_BROKER
    try:
        yield
    finally:
        celery_app.conf.broker_url = broker
        # The connection and producer pools were made for the memory transport and are
        # kept by the app: dropped, so that the next task sent (the webhook section's
        # nudges, which its Celery worker waits for) goes to the real broker again.
        celery_app.pool.force_close_all()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def _forget_request_log() -> None:
    """The request log's Redis queue for this database: nothing moves it to the
    database here (no Celery beat), so the lines the benchmark made are dropped."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.delete(requestlog._queue())
        client.close()
