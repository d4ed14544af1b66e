"""The API as a careful client sees it: every POST carries an Idempotency-Key, and an
answer that says nothing definite (a timeout, a reset connection, a 5xx, 409
idempotency_key_in_use, 429) is retried with the same key and the same bytes until a
definite one comes (2xx, or any other 4xx) or time runs out."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

# Connect, read: a request stuck behind a paused Redis or a restarting database for
# longer than this is an unknown outcome, retried.
TIMEOUT = (3.0, 10.0)
# A share of attempts gives up far sooner, while the server is still working on it: the
# retry then meets the first attempt in flight (409 idempotency_key_in_use) or its
# stored answer, the race an impatient client creates.
IMPATIENT = 0.05
IMPATIENT_READ = (0.05, 0.5)
RETRYABLE_4XX = {"idempotency_key_in_use", "rate_limited"}


@dataclass
class Request:
    """One logical request (one Idempotency-Key) and what became of it."""

    key: str
    kind: str  # create, batch, settle, void, reverse, fail, replay
    organization: str
    path: str
    body: dict[str, Any]
    client: int
    seq: int  # its place in its client's sequence
    target: str | None = None  # the transfer acted on
    outcome: str = "unknown"  # ok, failed, unknown
    status: int | None = None
    code: str | None = None
    response: Any = None
    raw: bytes = b""
    replayed: bool = False
    attempts: int = 0
    unknown_attempts: int = 0
    # A replay: the same key and bytes as this earlier request, sent again on purpose.
    replay_of: Request | None = None

    @property
    def data(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class Stats:
    """Counters shared by every client thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: Counter[str] = field(default_factory=Counter)
    unknown_reasons: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    retries: int = 0
    reads: int = 0
    # Seconds taken by each attempt that got a definite answer.
    latencies: list[float] = field(default_factory=list)
    # (Request-Id, wall-clock time) of every definite answer (2xx, 4xx): each should
    # reach the organization's request log.
    answered: list[tuple[str, float]] = field(default_factory=list)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def outcome(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1

    def unknown(self, reason: str) -> None:
        with self.lock:
            self.unknown_reasons[reason] += 1

    def latency(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)

    def answer(self, request_id: str) -> None:
        with self.lock:
            self.answered.append((request_id, time.time()))

    def percentile_ms(self, share: float) -> float | None:
        with self.lock:
            ordered = sorted(self.latencies)
        if not ordered:
            return None
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


class Api:
    """One credential's HTTP client (one per thread: requests.Session is not shared)."""

    def __init__(self, base_url: str, secret: str, stats: Stats) -> None:
        self.base_url = base_url
        self.stats = stats
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {secret}"
        self.session.headers["Content-Type"] = "application/json"

    def send(self, request: Request, *, until: float, rng: random.Random) -> None:
        """Send until a definite answer or `until` (time.monotonic()); fills `request`."""
        backoff = 0.05
        while True:
            request.attempts += 1
            self.stats.count("attempts")
            if request.attempts > 1:
                self.stats.count("retries")
            began = time.monotonic()
            timeout = TIMEOUT
            if rng.random() < IMPATIENT:
                timeout = (TIMEOUT[0], rng.uniform(*IMPATIENT_READ))
            reason, wait = self._attempt(request, timeout)
            if reason is None:
                self.stats.latency(time.monotonic() - began)
                self.stats.outcome(request.outcome)
                return
            request.unknown_attempts += 1
            self.stats.unknown(reason)
            if time.monotonic() + wait > until:
                request.outcome = "unknown"
                self.stats.outcome("unknown")
                return
            time.sleep(wait or backoff * rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 2.0)

    def _attempt(self, request: Request, timeout: tuple[float, float]) -> tuple[str | None, float]:
        """(None, 0) when the answer is definite; else why not, and how long to wait."""
        try:
            response = self.session.post(
                self.base_url + request.path,
                data=request.data,
                headers={"Idempotency-Key": request.key},
                timeout=timeout,
            )
        except requests.Timeout:
            return "timeout", 0
        except requests.ConnectionError:
            return "connection", 0
        except requests.RequestException:
            return "transport", 0
        status = response.status_code
        body = _json(response.content)
        code = body.get("code") if isinstance(body, dict) else None
        if status >= 500:
            return f"http_{status}", 0
        if status in (409, 429) and code in RETRYABLE_4XX:
            return code, min(float(response.headers.get("Retry-After") or 0.2), 2.0)
        self.stats.answer(response.headers.get("Request-Id", ""))
        request.status = status
        request.code = code
        request.raw = response.content
        request.response = body
        request.replayed = response.headers.get("Idempotent-Replayed") == "true"
        request.outcome = "ok" if 200 <= status < 300 else "failed"
        return None, 0

    def get(self, path: str) -> tuple[int, Any] | None:
        """A read, once: None if it did not answer."""
        try:
            response = self.session.get(self.base_url + path, timeout=TIMEOUT)
        except requests.RequestException:
            return None
        if response.status_code < 500:
            self.stats.answer(response.headers.get("Request-Id", ""))
        return response.status_code, _json(response.content)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
