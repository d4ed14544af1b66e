"""What one API request is made of, measured in this process through Django's test
client (the same middleware, views and services gunicorn runs): its round trips to
PostgreSQL and to Redis, and the time spent waiting on each."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import redis
from django.db import connection
from django.http.response import HttpResponseBase
from django.test.utils import CaptureQueriesContext


@dataclass(frozen=True)
class Anatomy:
    """Per request, averaged over the samples."""

    # Statements through Django, BEGIN and COMMIT included (CaptureQueriesContext),
    # plus the health check Django sends first on a persistent connection
    # (CONN_HEALTH_CHECKS: a bare `SELECT 1` that CaptureQueriesContext does not see).
    db_round_trips: float
    redis_round_trips: float
    total_ms: float
    db_ms: float
    redis_ms: float
    # The round trips of the last request, in order.
    trips: tuple[str, ...]

    @property
    def python_ms(self) -> float:
        return self.total_ms - self.db_ms - self.redis_ms


def measure(call: Callable[[int], HttpResponseBase], expected: int, samples: int) -> Anatomy:
    """`call(i)` `samples` times after one warm-up call, each finding the connection as
    a new request does (Django's request_started signal, which the test client skips,
    marks the health check due). The warm-up call also reconnects if the connection
    has outlived CONN_MAX_AGE, so that no measured request does."""
    connection.close_if_unusable_or_obsolete()
    _check(call(-1), expected)
    clock = _Clock()
    total = 0.0
    with clock.watching(), CaptureQueriesContext(connection) as captured:
        for index in range(samples):
            connection.close_if_unusable_or_obsolete()
            clock.trips = []
            started = time.perf_counter()
            response = call(index)
            total += time.perf_counter() - started
            _check(response, expected)
    return Anatomy(
        db_round_trips=(len(captured.captured_queries) + clock.health_checks) / samples,
        redis_round_trips=clock.redis_commands / samples,
        total_ms=total * 1000 / samples,
        db_ms=clock.db_seconds * 1000 / samples,
        redis_ms=clock.redis_seconds * 1000 / samples,
        trips=tuple(clock.trips),
    )


@dataclass
class _Clock:
    """Times every round trip: statements (execute_wrapper; psycopg sends a pending
    BEGIN with the statement that follows it), COMMIT (the backend's _commit), the
    health check (is_usable, which bypasses execute_wrapper), and every Redis command
    (redis.Redis.execute_command: the rate limits, the cache and the request log all
    go through it)."""

    db_seconds: float = 0.0
    redis_seconds: float = 0.0
    health_checks: int = 0
    redis_commands: int = 0
    trips: list[str] = field(default_factory=list)

    @contextmanager
    def watching(self) -> Iterator[None]:
        clock = self
        is_usable = connection.is_usable
        commit: Callable[[], None] = connection._commit  # type: ignore[attr-defined]
        set_autocommit: Callable[[bool], None] = connection._set_autocommit  # type: ignore[attr-defined]
        execute_command: Callable[..., Any] = redis.Redis.execute_command

        def timed_db(label: str, call: Callable[[], Any]) -> Any:
            clock.trips.append(f"db: {label}")
            started = time.perf_counter()
            try:
                return call()
            finally:
                clock.db_seconds += time.perf_counter() - started

        def statement(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
        ) -> Any:
            return timed_db(_shorten(sql), lambda: execute(sql, params, many, context))

        def health_check() -> bool:
            clock.health_checks += 1
            return bool(timed_db("SELECT 1 (health check)", is_usable))

        def committed() -> None:
            timed_db("COMMIT", commit)

        def autocommit(value: bool) -> None:
            if not value:
                clock.trips.append("db: BEGIN (sent with the next statement)")
            set_autocommit(value)

        def command(client: redis.Redis, *args: Any, **options: Any) -> Any:
            clock.redis_commands += 1
            clock.trips.append(f"redis: {args[0]}")
            started = time.perf_counter()
            try:
                return execute_command(client, *args, **options)
            finally:
                clock.redis_seconds += time.perf_counter() - started

        with (
            connection.execute_wrapper(statement),
            mock.patch.object(connection, "is_usable", health_check),
            mock.patch.object(connection, "_commit", committed),
            mock.patch.object(connection, "_set_autocommit", autocommit),
            mock.patch.object(redis.Redis, "execute_command", command),
        ):
            yield


def _check(response: HttpResponseBase, expected: int) -> None:
    if response.status_code != expected:
        raise RuntimeError(
            f"expected HTTP {expected}, got {response.status_code}: "
            f"{getattr(response, 'content', b'')[:200]!r}"
        )


def _shorten(sql: str) -> str:
    """`SELECT "t"."a", "t"."b" FROM "t" WHERE …` as `SELECT … FROM "t" WHERE …`, at
    most 60 characters."""
    text = re.sub(r'^SELECT ".*?" FROM ', "SELECT … FROM ", " ".join(sql.split()))
    return text if len(text) <= 60 else text[:59] + "…"
