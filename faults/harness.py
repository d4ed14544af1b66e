"""The run: start everything, seed, load under faults, drain, check, report."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

from faults import checker, processes
from faults.client import Api, Request, Stats
from faults.nemesis import KINDS, Nemesis
from faults.processes import (
    ROOT,
    CeleryProcess,
    Gunicorn,
    PostgresCluster,
    RedisServer,
    child_env,
    manage,
    postgres_home,
    tail,
)
from faults.receiver import Receiver
from faults.workload import Client, History, Organization

DATABASE = "openpay_faults"
PROGRESS_EVERY = 5.0
FUNDING = 1_000_000  # each extra account's test money, like the sandbox's


@dataclass(frozen=True)
class Plan:
    mode: str
    seed: int
    organizations: int
    clients: int
    load_seconds: float
    fault_gap: tuple[float, float]
    max_faults: int
    max_requests: int  # per client
    resolve_grace: float  # after the load, for a request to resolve
    drain_seconds: float  # after that, for the worker to settle and deliver
    web_workers: int
    failure_rate: float  # the receiver's share of 500s
    kinds: tuple[str, ...] = KINDS  # the faults to inject
    # After the last fault, before the drain, so that every periodic task runs once with
    # nothing failing (and the api_request.failed reports can be checked): longer than
    # beat's longest period (60 s). The quick run skips it (and that check).
    quiet_seconds: float = 65.0

    def describe(self) -> str:
        return (
            f"{self.mode}: seed {self.seed}, {self.organizations} organizations, "
            f"{self.clients} clients, {self.load_seconds:.0f}s of load (at most "
            f"{self.max_requests} requests a client), a fault every "
            f"{self.fault_gap[0]:.0f}-{self.fault_gap[1]:.0f}s (at most {self.max_faults}: "
            f"{', '.join(self.kinds)}), receiver failing {self.failure_rate:.0%}"
        )


def quick(seed: int) -> Plan:
    return Plan(
        mode="quick",
        seed=seed,
        organizations=3,
        clients=6,
        load_seconds=60,
        fault_gap=(3.0, 6.0),
        max_faults=16,
        max_requests=4_000,
        resolve_grace=45,
        drain_seconds=100,
        web_workers=3,
        failure_rate=0.2,
        quiet_seconds=0,
    )


def full(seed: int) -> Plan:
    return Plan(
        mode="full",
        seed=seed,
        organizations=4,
        clients=8,
        load_seconds=420,
        fault_gap=(4.0, 10.0),
        max_faults=80,
        max_requests=30_000,
        resolve_grace=60,
        drain_seconds=150,
        web_workers=3,
        failure_rate=0.2,
    )


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def database(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A short connection: the cluster restarts under us, so none is kept."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        yield conn


def run(plan: Plan, var_dir: Path) -> int:
    started = time.monotonic()
    logs = var_dir / "logs"
    if logs.exists():
        for old in logs.iterdir():
            old.unlink()
    (var_dir / "run").mkdir(parents=True, exist_ok=True)
    processes.CHILDREN = var_dir / "run" / "children.jsonl"
    if reaped := processes.reap_leftovers(processes.CHILDREN):
        say(f"faults: ended {reaped} processes an earlier, interrupted run left behind")
    say(f"faults: {plan.describe()}")
    with ExitStack() as stack:
        home = postgres_home(var_dir)
        postgres = PostgresCluster(
            data=home / "pg", log=(logs if home == var_dir else home) / "postgresql.log"
        )
        postgres.create()
        postgres.start()
        stack.callback(postgres.stop)
        postgres.create_database(DATABASE)
        redis_server = RedisServer(directory=var_dir / "redis", log=logs / "redis.log")
        redis_server.start()
        stack.callback(redis_server.stop)
        receiver = Receiver(failure_rate=plan.failure_rate, seed=plan.seed)
        receiver.start()
        stack.callback(receiver.stop)

        database_url = postgres.url(DATABASE)
        gunicorn = Gunicorn(env={}, log=logs / "gunicorn.log", workers=plan.web_workers)
        env = child_env(
            database_url=database_url,
            redis_url=redis_server.url(),
            base_url=gunicorn.base_url,
            var_dir=var_dir / "run",
        )
        gunicorn.env = env
        say(f"faults: services up ({time.monotonic() - started:.0f}s); migrating")
        manage("migrate", "--verbosity", "0", env=env)
        say(f"faults: migrated ({time.monotonic() - started:.0f}s); seeding")
        seeded = _seed(plan, env)
        say(f"faults: seeded ({time.monotonic() - started:.0f}s)")
        gunicorn.start()
        stack.callback(gunicorn.stop)
        schedule = var_dir / "run" / "celerybeat-schedule"
        worker = CeleryProcess("worker", env, logs / "worker.log", schedule)
        worker.start()
        stack.callback(worker.stop)
        beat = CeleryProcess("beat", env, logs / "beat.log", schedule)
        beat.start()
        beat_started = time.time()
        stack.callback(beat.stop)
        say(
            f"faults: PostgreSQL :{postgres.port}, Redis :{redis_server.port}, gunicorn "
            f"{gunicorn.base_url} ({plan.web_workers} workers), Celery worker and beat, "
            f"receiver {receiver.url_for('…')}; logs in {logs}"
            + ("" if home == var_dir else f" (PostgreSQL's in {home})")
        )
        organizations = _world(seeded, gunicorn.base_url, receiver)
        names = [o.id for o in organizations]
        with database(database_url) as conn:
            before = checker.money(conn, names)
        say(f"faults: setup done in {time.monotonic() - started:.0f}s; load starts")

        stats, history = Stats(), History()
        stop = threading.Event()
        t0 = time.monotonic()
        load_until = t0 + plan.load_seconds
        resolve_until = load_until + plan.resolve_grace
        clients = [
            Client(
                index=i,
                organization=organizations[i % len(organizations)],
                base_url=gunicorn.base_url,
                stats=stats,
                history=history,
                rng=random.Random(plan.seed * 1_000 + i),  # noqa: S311 -- a test's dice
                load_until=load_until,
                resolve_until=resolve_until,
                max_requests=plan.max_requests,
                stop=stop,
            )
            for i in range(plan.clients)
        ]
        nemesis = Nemesis(
            postgres=postgres,
            redis=redis_server,
            gunicorn=gunicorn,
            worker=worker,
            rng=random.Random(plan.seed),  # noqa: S311 -- a test's dice
            start_at=t0 + 3,
            stop_at=load_until - 3,
            gap=plan.fault_gap,
            max_faults=plan.max_faults,
            stop=stop,
            kinds=plan.kinds,
        )
        threads = [
            threading.Thread(target=c.run, name=f"client-{c.index}", daemon=True) for c in clients
        ]
        threads.append(threading.Thread(target=nemesis.run, name="nemesis", daemon=True))
        stack.callback(stop.set)
        for thread in threads:
            thread.start()
        supervision: Counter[str] = Counter()
        backlog = Backlog(redis_server.url())
        next_line = t0 + PROGRESS_EVERY
        while any(t.is_alive() for t in threads) and time.monotonic() < resolve_until + 20:
            time.sleep(0.5)
            _supervise(gunicorn, beat, supervision)
            if time.monotonic() >= next_line:
                next_line += PROGRESS_EVERY
                say(f"{_progress(t0, stats, nemesis, receiver, history)} | {backlog.sample()}")
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        say(_progress(t0, stats, nemesis, receiver, history) + " | load over")

        # Everything back up, then the worker drains: every auto transfer settled,
        # every committed event acknowledged by the receiver.
        redis_server.resume()
        if redis_server.process is None:
            redis_server.start()
        if not postgres.running():
            postgres.start()
        if not worker.alive():
            worker.start()
        _supervise(gunicorn, beat, supervision)
        # Every periodic task (the slowest, report_api_failures, runs once a minute) gets
        # one run with nothing failing: what the faults made it miss, it must catch up.
        quiet_until = (nemesis.finished_at or time.time()) + plan.quiet_seconds
        if (wait := quiet_until - time.time()) > 0:
            say(f"faults: the faults stopped; {wait:.0f}s more for the periodic tasks")
            while time.time() < quiet_until:
                time.sleep(1.0)
                _supervise(gunicorn, beat, supervision)
        quiet = time.time()
        committed, drained = _drain(plan, database_url, redis_server.url(), names, receiver, t0)
        worker.stop()
        beat.stop()
        gunicorn.stop()

        verdict = checker.Verdict()
        verify = _ledger_verify(env)
        with database(database_url) as conn:
            checker.check_books(conn, names, before, verify, history.balance_violations, verdict)
            books = checker.check_requests(conn, names, history.requests, verdict)
            checker.check_events(conn, names, books, committed, receiver, verdict)
            checker.check_api_failure_reports(
                conn, names, _due_minutes(beat_started, quiet, plan.quiet_seconds), verdict
            )
            restarts = [start for start, _, kind, _ in nemesis.log if kind == "redis_restart"]
            checker.check_request_log(conn, names, stats.answered, restarts, verdict)
        if not drained:
            verdict.fail(f"the drain did not finish within {plan.drain_seconds:.0f}s")
        for name, count in supervision.items():
            verdict.fail(f"{name} ({count} times): a process died that no fault killed")
        for error in nemesis.errors:
            verdict.fail(f"a fault could not be injected: {error}")
        for line in verdict.violations[:50]:
            say(f"VIOLATION {line}")
        if verdict.violations:
            say(f"faults: logs of every process are in {logs}")
            for name in ("gunicorn.log", "worker.log", "beat.log"):
                say(f"--- {name} (tail)\n{tail(logs / name)}")
        report = _report(plan, started, stats, history.requests, nemesis, receiver, committed)
        report |= verdict.figures
        report["backlog_peaks"] = backlog.peaks
        report["violations"] = len(verdict.violations)
        report["violation_examples"] = verdict.violations[:5]
        print(json.dumps(report, separators=(",", ":")), flush=True)
        return 1 if verdict.violations else 0
    raise AssertionError("unreachable")


def _seed(plan: Plan, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 -- our own fixed command line
        [sys.executable, "-m", "faults.seed", "--organizations", str(plan.organizations)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"faults: seeding failed:\n{done.stderr.decode(errors='replace')}")
    seeded: dict[str, Any] = json.loads(done.stdout)
    return seeded


def _world(seeded: dict[str, Any], base_url: str, receiver: Receiver) -> list[Organization]:
    """Through the API: two more USD accounts and one more EUR account per organization,
    funded with test money, and a webhook endpoint taking every event."""
    organizations = []
    for org in seeded["organizations"]:
        api = Api(base_url, org["test_secret_key"], Stats())
        accounts: dict[str, list[str]] = {}
        for account in org["accounts"]:
            accounts.setdefault(account["currency"], []).append(account["id"])
        for currency in ("USD", "USD", "EUR"):
            opened = _setup_call(
                api, org["id"], "/v1/accounts", {"currency": currency, "name": "bank test"}
            )
            accounts[currency].append(opened["id"])
            _setup_call(
                api,
                org["id"],
                f"/v1/test_helpers/accounts/{opened['id']}/fund",
                {"amount": FUNDING},
            )
        endpoint = _setup_call(
            api,
            org["id"],
            "/v1/webhook_endpoints",
            {"url": receiver.url_for(org["id"]), "enabled_events": ["*"]},
        )
        receiver.register(org["id"], endpoint["secret"])
        organizations.append(Organization(org["id"], org["test_secret_key"], accounts))
    return organizations


def _setup_call(api: Api, organization: str, path: str, body: dict[str, Any]) -> Any:
    request = Request(
        key=f"setup-{random.getrandbits(64):016x}",
        kind="setup",
        organization=organization,
        path=path,
        body=body,
        client=-1,
        seq=0,
    )
    api.send(request, until=time.monotonic() + 30, rng=random.Random(0))  # noqa: S311
    if request.outcome != "ok":
        raise SystemExit(f"faults: setup call {path} failed: {request.status} {request.raw!r}")
    return request.response


def _supervise(gunicorn: Gunicorn, beat: CeleryProcess, seen: Counter[str]) -> None:
    """Nothing but the nemesis may kill a process: if one died, note it and restart it."""
    if not gunicorn.alive():
        seen["gunicorn master exited"] += 1
        gunicorn.start()
    if not beat.alive():
        seen["celery beat exited"] += 1
        beat.start()


def _drain(
    plan: Plan,
    database_url: str,
    redis_url: str,
    organizations: list[str],
    receiver: Receiver,
    t0: float,
) -> tuple[set[str], bool]:
    """Wait (bounded) until no auto transfer is pending, the receiver acknowledged every
    committed event and the request log's buffer is flushed; the committed events at
    that moment, and whether it got there."""
    deadline = time.monotonic() + plan.drain_seconds
    next_line = time.monotonic()
    committed: set[str] = set()
    buffer = redis.Redis.from_url(redis_url, socket_timeout=5)
    while True:
        pending = undelivered = buffered = -1
        try:
            # payments.requestlog's buffer: one Redis list per database.
            buffered = int(buffer.llen(f"openpay:requestlog:{DATABASE}"))
        except redis.RedisError as exc:
            say(f"faults: drain: Redis not answering ({exc})")
        try:
            with database(database_url) as conn:
                row = conn.execute(
                    "SELECT COUNT(*) FROM ledger_transfer WHERE holder = ANY(%s) "
                    "AND status = 'pending' AND settlement = 'auto'",
                    [organizations],
                ).fetchone()
                pending = int(row[0]) if row else -1
                committed = set(checker.events(conn, organizations))
            undelivered = len(committed - receiver.acknowledged)
        except psycopg.Error as exc:
            say(f"faults: drain: database not answering ({exc})")
        if pending == 0 and undelivered == 0 and buffered == 0:
            say(f"faults [{time.monotonic() - t0:5.0f}s] drained: {len(committed)} events")
            return committed, True
        if time.monotonic() >= deadline:
            return committed, False
        if time.monotonic() >= next_line:
            next_line += PROGRESS_EVERY
            say(
                f"faults [{time.monotonic() - t0:5.0f}s] draining: {pending} auto transfers "
                f"pending, {undelivered} of {len(committed)} events not yet acknowledged, "
                f"{buffered} request log lines not yet flushed"
            )
        time.sleep(1.0)


def _due_minutes(beat_started: float, quiet: float, quiet_seconds: float) -> list[dt.datetime]:
    """The minutes whose api_request.failed report is certainly written: beat asks every
    60 s from its start, and each run reports the minute that ended 10 s to 70 s before
    and catches up the nine before it; at least one run fell in the `quiet_seconds`
    before `quiet`, after the last fault. (The first minute may predate beat: skipped.)"""
    if quiet_seconds < 62:
        return []
    first = _minute(beat_started - 10) + dt.timedelta(minutes=1)
    last = _minute(quiet - quiet_seconds - 70)
    first = max(first, last - dt.timedelta(minutes=9))
    minutes = []
    while first <= last:
        minutes.append(first)
        first += dt.timedelta(minutes=1)
    return minutes


def _minute(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.UTC).replace(second=0, microsecond=0)


def _ledger_verify(env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "ledger_verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=300,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


class Backlog:
    """What waits in our Redis: Celery's queue and the request log's buffer (sampled at
    each progress line; their peaks go in the report)."""

    # kombu's list for the default queue, and payments.requestlog's buffer.
    KEYS = {"celery_queue": "celery", "request_log_buffer": f"openpay:requestlog:{DATABASE}"}

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.peaks = dict.fromkeys(self.KEYS, 0)

    def sample(self) -> str:
        seen = []
        for name, key in self.KEYS.items():
            try:
                length = int(self.client.llen(key))
            except redis.RedisError:
                seen.append(f"{name} ?")
                continue
            self.peaks[name] = max(self.peaks[name], length)
            seen.append(f"{name} {length}")
        return ", ".join(seen)


def _progress(
    t0: float, stats: Stats, nemesis: Nemesis, receiver: Receiver, history: History
) -> str:
    with stats.lock:
        outcomes = dict(stats.outcomes)
        retries = stats.retries
    with history.lock:
        made = len(history.requests)
    _, acknowledged = receiver.snapshot()
    in_flight = made - sum(outcomes.values())
    faults = ", ".join(f"{k} {v}" for k, v in sorted(nemesis.injected.items())) or "none yet"
    return (
        f"faults [{time.monotonic() - t0:5.0f}s] requests {made}: ok {outcomes.get('ok', 0)}, "
        f"failed {outcomes.get('failed', 0)}, unknown {outcomes.get('unknown', 0)} "
        f"(+{in_flight} in flight) | retries {retries} | faults "
        f"{sum(nemesis.injected.values())} ({faults}) | events acknowledged {acknowledged}"
    )


def _report(
    plan: Plan,
    started: float,
    stats: Stats,
    requests: list[Request],
    nemesis: Nemesis,
    receiver: Receiver,
    committed: set[str],
) -> dict[str, Any]:
    outcomes = Counter(r.outcome for r in requests)
    by_kind: dict[str, dict[str, int]] = {}
    for request in requests:
        kind = by_kind.setdefault(request.kind, {"ok": 0, "failed": 0, "unknown": 0})
        kind[request.outcome] += 1
    return {
        "test": "faults",
        "mode": plan.mode,
        "seed": plan.seed,
        "seconds": round(time.monotonic() - started, 1),
        "organizations": plan.organizations,
        "clients": plan.clients,
        "requests": {k: outcomes.get(k, 0) for k in ("ok", "failed", "unknown")},
        "requests_by_kind": by_kind,
        "attempts": stats.attempts,
        "retries": stats.retries,
        "unknown_attempts": dict(sorted(stats.unknown_reasons.items())),
        "replayed_on_purpose": sum(1 for r in requests if r.kind == "replay"),
        "balance_reads": stats.reads,
        "latency_ms": {"p50": stats.percentile_ms(0.5), "p99": stats.percentile_ms(0.99)},
        "faults": {kind: nemesis.injected.get(kind, 0) for kind in KINDS},
        "faults_total": sum(nemesis.injected.values()),
        "events": {
            "committed": len(committed),
            "delivered": len(committed & receiver.acknowledged),
            "webhook_requests": sum(receiver.received.values()),
            "answered_500": receiver.answered_500,
            "torn_requests": receiver.torn_requests,
        },
    }
