"""The clients: N threads making random transfers through the HTTP API, each request
with its own Idempotency-Key, retried with that key until it resolves.

Each thread works for one organization (several threads share an organization, so
they contend for its accounts) and owns the transfers it made: only it settles, voids,
fails or reverses them, one action at a time, so the checker knows the order of the
actions on every transfer. Every request is kept in the history the checker reads.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from faults.client import Api, Request, Stats

# What a client does next, by weight (an action needs a transfer it applies to).
WEIGHTS = {
    "create_auto": 30,
    "create_manual": 20,
    "batch": 7,
    "settle": 16,
    "void": 6,
    "void_auto": 4,
    "fail": 3,
    "reverse": 6,
    "read": 5,
    "replay": 3,
}
# An auto transfer older than this is probably settled: worth trying to reverse.
SETTLED_AFTER = 3.0


@dataclass(frozen=True)
class Organization:
    id: str
    secret: str
    accounts: dict[str, list[str]]  # currency -> account ids


@dataclass
class History:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Request] = field(default_factory=list)
    balance_violations: list[str] = field(default_factory=list)

    def add(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


@dataclass
class Client:
    index: int
    organization: Organization
    base_url: str
    stats: Stats
    history: History
    rng: random.Random
    load_until: float  # no new request after this (time.monotonic())
    resolve_until: float  # a request still unresolved then stays unknown
    max_requests: int
    stop: threading.Event
    manual_pending: list[str] = field(default_factory=list)
    auto_recent: list[tuple[str, float]] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    resolved: list[Request] = field(default_factory=list)
    seq: int = 0

    def run(self) -> None:
        api = Api(self.base_url, self.organization.secret, self.stats)
        while (
            time.monotonic() < self.load_until
            and not self.stop.is_set()
            and self.seq < self.max_requests
        ):
            self.step(api)

    def step(self, api: Api) -> None:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if kind == "read":
            self.read(api)
            return
        request = self.plan(kind)
        if request is None:
            return
        self.history.add(request)
        api.send(request, until=self.resolve_until, rng=self.rng)
        self.learn(request)

    # What to send ---------------------------------------------------------------------

    def plan(self, kind: str) -> Request | None:
        if kind in ("create_auto", "create_manual"):
            request = self.request(
                "create",
                "/v1/transfers",
                self.transfer_body(kind.removeprefix("create_"), key_hint="create"),
            )
            # The key the checker finds the transfer by.
            request.body["metadata"] = {"faults_key": request.key}
            return request
        if kind == "batch":
            return self.batch()
        if kind == "settle" and self.manual_pending:
            transfer = self.take(self.manual_pending)
            body: dict[str, Any] = {}
            if self.rng.random() < 0.4:
                body["amount"] = self.rng.randint(1, 400)  # partial capture (or too much)
            return self.request("settle", f"/v1/transfers/{transfer}/settle", body, transfer)
        if kind == "void" and self.manual_pending:
            transfer = self.take(self.manual_pending)
            return self.request("void", f"/v1/transfers/{transfer}/void", {}, transfer)
        if kind == "void_auto" and self.auto_recent:
            transfer, _ = self.auto_recent.pop(self.rng.randrange(len(self.auto_recent)))
            return self.request("void", f"/v1/transfers/{transfer}/void", {}, transfer)
        if kind == "fail" and self.auto_recent:
            transfer, _ = self.auto_recent.pop(self.rng.randrange(len(self.auto_recent)))
            return self.request("fail", f"/v1/test_helpers/transfers/{transfer}/fail", {}, transfer)
        if kind == "reverse":
            self.promote_old_auto()
            if self.settled:
                transfer = self.take(self.settled)
                return self.request(
                    "reverse",
                    f"/v1/transfers/{transfer}/reverse",
                    {"description": "refund"},
                    transfer,
                )
        if kind == "replay" and self.resolved:
            return self.replay()
        return None

    def request(
        self, kind: str, path: str, body: dict[str, Any], target: str | None = None
    ) -> Request:
        self.seq += 1
        return Request(
            key=f"c{self.index}-{self.seq}-{self.rng.getrandbits(48):012x}",
            kind=kind,
            organization=self.organization.id,
            path=path,
            body=body,
            client=self.index,
            seq=self.seq,
            target=target,
        )

    def transfer_body(self, settlement: str, *, key_hint: str) -> dict[str, Any]:
        currency = self.rng.choice(sorted(self.organization.accounts))
        source, destination = self.rng.sample(self.organization.accounts[currency], 2)
        roll = self.rng.random()
        if roll < 0.85:
            amount = self.rng.randint(100, 30_000)
        elif roll < 0.95:
            amount = self.rng.randint(30_000, 300_000)
        else:
            amount = 5_000_000  # more than any account holds: 402 insufficient_funds
        return {
            "source_account": source,
            "destination_account": destination,
            "amount": amount,
            "currency": currency,
            "settlement": settlement,
            "description": f"bank test {key_hint}",
            "metadata": {},
        }

    def batch(self) -> Request:
        items = [
            self.transfer_body(self.rng.choice(["auto", "manual"]), key_hint="batch")
            for _ in range(self.rng.randint(2, 5))
        ]
        request = self.request("batch", "/v1/transfer_batches", {"transfers": items})
        for position, item in enumerate(items):
            item["metadata"] = {"faults_key": request.key, "item": str(position)}
        return request

    def replay(self) -> Request:
        """The same key and bytes again, after a definite answer: it must come back
        byte for byte, marked Idempotent-Replayed."""
        earlier = self.rng.choice(self.resolved)
        self.seq += 1
        return Request(
            key=earlier.key,
            kind="replay",
            organization=earlier.organization,
            path=earlier.path,
            body=earlier.body,
            client=self.index,
            seq=self.seq,
            target=earlier.target,
            replay_of=earlier,
        )

    def take(self, pool: list[str]) -> str:
        return pool.pop(self.rng.randrange(len(pool)))

    def promote_old_auto(self) -> None:
        now = time.monotonic()
        keep = []
        for transfer, made in self.auto_recent:
            if now - made > SETTLED_AFTER:
                self.settled.append(transfer)
            else:
                keep.append((transfer, made))
        self.auto_recent = keep

    # What came back -------------------------------------------------------------------

    def learn(self, request: Request) -> None:
        if request.kind == "replay":
            return
        if request.outcome != "unknown" and request.status != 400:
            self.resolved.append(request)
            del self.resolved[:-200]
        if request.outcome != "ok":
            return
        made = (
            request.response["data"]
            if request.kind == "batch"
            else [request.response]
            if request.kind == "create"
            else []
        )
        now = time.monotonic()
        for transfer in made:
            if transfer["settlement"] == "manual":
                self.manual_pending.append(transfer["id"])
            else:
                self.auto_recent.append((transfer["id"], now))
        if request.kind == "settle" and request.response.get("status") == "settled":
            self.settled.append(str(request.target))

    def read(self, api: Api) -> None:
        """A balance, read through the API: never below its limit (0 here)."""
        currency = self.rng.choice(sorted(self.organization.accounts))
        account = self.rng.choice(self.organization.accounts[currency])
        answer = api.get(f"/v1/accounts/{account}/balance")
        self.stats.count("reads")
        if answer is None or answer[0] != 200:
            return
        balance = answer[1]
        if balance["available"] < 0 or balance["posted"] < 0 or balance["pending"] < 0:
            with self.history.lock:
                self.history.balance_violations.append(f"{account}: {balance}")
