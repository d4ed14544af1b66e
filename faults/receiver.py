"""The webhook receiver: a threaded http.server on 127.0.0.1 that verifies every
request's Standard Webhooks signature, answers 500 to a share of them at random
(seeded), and records every event id it received and every one it acknowledged.

It fails one event at most FAILURES_IN_A_ROW times: retries are exercised on every
step of the (scaled) schedule it reaches, and every event is due again within seconds,
not after a streak of bad luck that outlasts the drain (at 20 %, seven failures in a
row happen to about one event in 80,000: one run in ten would end on it)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from faults.processes import HOST

PATH_PREFIX = "/hooks/"
FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class Seen:
    """What an event's first verified delivery said it was about."""

    type: str
    organization: str
    object_id: str | None
    status: str | None
    settled_amount: int | None


@dataclass
class Receiver:
    failure_rate: float
    seed: int
    verifiers: dict[str, Any] = field(default_factory=dict)  # organization id -> Webhook
    received: Counter[str] = field(default_factory=Counter)  # verified requests per event
    acknowledged: set[str] = field(default_factory=set)  # answered 2xx at least once
    seen: dict[str, Seen] = field(default_factory=dict)
    answered_500: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # 500s answered per event
    torn_requests: int = 0  # bodies cut short by a sender that died
    refused: list[str] = field(default_factory=list)  # why each refused request was
    mismatched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 -- a test's dice, not secrecy
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def register(self, organization_id: str, secret: str) -> None:
        self.verifiers[organization_id] = Webhook(secret)

    def url_for(self, organization_id: str) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_port}{PATH_PREFIX}{organization_id}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a worker SIGKILLed while sending):
                    # nothing to verify; its delivery is retried.
                    receiver.torn()
                    return
                status = receiver.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        organization = path.removeprefix(PATH_PREFIX)
        verifier = self.verifiers.get(organization)
        if not path.startswith(PATH_PREFIX) or verifier is None:
            with self._lock:
                self.refused.append(f"{path}: no such endpoint")
            return 404
        try:
            payload = verifier.verify(body, {k.lower(): v for k, v in headers.items()})
        except WebhookVerificationError as exc:
            with self._lock:
                self.refused.append(f"{path}: {exc} ({len(body)} bytes: {body[:80]!r})")
            return 400
        event_id = str(payload.get("id"))
        header_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
        obj = (payload.get("data") or {}).get("object") or {}
        seen = Seen(
            type=str(payload.get("type")),
            organization=organization,
            object_id=obj.get("id") if isinstance(obj, dict) else None,
            status=obj.get("status") if isinstance(obj, dict) else None,
            settled_amount=obj.get("settled_amount") if isinstance(obj, dict) else None,
        )
        with self._lock:
            self.received[event_id] += 1
            first = self.seen.setdefault(event_id, seen)
            if header_id != event_id or first != seen:
                # A retry must carry the same event; the header must name it.
                self.mismatched.append(event_id)
            if (
                self._rng.random() < self.failure_rate
                and self.failed[event_id] < FAILURES_IN_A_ROW
                and event_id not in self.acknowledged
            ):
                self.failed[event_id] += 1
                self.answered_500 += 1
                return 500
            self.acknowledged.add(event_id)
        return 204

    def torn(self) -> None:
        with self._lock:
            self.torn_requests += 1

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return len(self.received), len(self.acknowledged)
