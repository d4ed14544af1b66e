"""Rate limits per credential and per client IP: a fixed window (one second unless
API_RATE_LIMIT_WINDOW_SECONDS says otherwise) counted atomically in Redis (one INCR
with its expiry, in a Lua script), so 50 concurrent requests against a limit of 10 let
exactly 10 through. Without Redis (a laptop), a per-process counter stands in."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

_INCREMENT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset)
        return headers


def rate_limit_check(*, bucket: str, limit: int) -> Verdict:
    seconds = settings.API_RATE_LIMIT_WINDOW_SECONDS
    now = time.time()
    window = int(now // seconds)
    reset = max(1, math.ceil((window + 1) * seconds - now))
    try:
        count = _counter().increment(f"ratelimit:{bucket}:{seconds}:{window}", seconds + 1)
    except Exception:  # Redis unreachable: see below
        # Fail open: while Redis is down, payments keep working unlimited rather than
        # every request failing; the outage is logged and /readyz reports it.
        log.warning("rate limiting is off: its counters are unreachable", exc_info=True)
        count = 0
    return Verdict(
        allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset=reset
    )


class _RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self.script: Any = redis.Redis.from_url(url).register_script(_INCREMENT)

    def increment(self, key: str, ttl: int) -> int:
        return int(self.script(keys=[key], args=[ttl]))


class _LocalCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}

    def increment(self, key: str, ttl: int) -> int:
        now = time.monotonic()
        with self.lock:
            self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
            count = self.counts.get(key, (0, now + ttl))[0] + 1
            self.counts[key] = (count, now + ttl)
            return count


@cache
def _counter() -> _RedisCounter | _LocalCounter:
    return _RedisCounter(settings.REDIS_URL) if settings.REDIS_URL else _LocalCounter()
