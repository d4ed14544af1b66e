"""An HTTP/1.1 load generator for the loopback: asyncio protocols on raw keep-alive
connections, no HTTP library in the way. No compiled tool (wrk, hey, ab) is installed
on the benchmark machines, so this one drives both sides of every API figure alike.

Two shapes of load:

- **closed loop** (`closed_loop`): N connections, each sending its next request as soon
  as the answer to the last one has arrived, for a fixed time: the peak rate;
- **open loop** (`open_loop`): requests due on a fixed schedule (rate R) whatever the
  answers, handed to the first free connection; a request's latency runs from the
  moment it was *due*, so a slow answer that holds the next requests back is counted
  in theirs too (no coordinated omission).

Every run is bounded in count and in time: it sends nothing after its deadline (the
open loop exactly rate * seconds requests), waits at most `GRACE` seconds for the
answers in flight, then closes every connection it opened.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
# Seconds a run waits, after its deadline, for the answers still in flight.
GRACE = 10.0

# The bytes of request number `index` of a run.
Requests = Callable[[int], bytes]


def get(path: str, headers: dict[str, str]) -> bytes:
    return _request("GET", path, headers, b"")


def post_json(path: str, headers: dict[str, str], body: bytes) -> bytes:
    return _request("POST", path, {**headers, "Content-Type": "application/json"}, body)


def _request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Load:
    """What one run saw. Latencies are in seconds, one per answer (any status)."""

    seconds: float
    expected: int
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    # The first body seen for each unexpected status, to say what went wrong.
    samples: dict[int, bytes] = field(default_factory=dict)
    # CPU seconds the generator itself used: how much of the machine it took.
    cpu_seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.statuses[self.expected]

    def rate(self) -> float:
        """Answers with the expected status per second."""
        return self.done / self.seconds

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (nearest rank) of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    def failures(self) -> Counter[str]:
        """Every answer other than the expected status, and every error, by kind."""
        found = Counter(self.errors)
        for status, count in self.statuses.items():
            if status != self.expected:
                body = self.samples.get(status, b"").decode(errors="replace")
                found[f"HTTP {status}: {body[:90]}"] += count
        return found

    def _answer(self, status: int, body: bytes, latency: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency)
        if status != self.expected and status not in self.samples:
            self.samples[status] = body


def closed_loop(
    port: int,
    requests: Requests,
    *,
    connections: int,
    seconds: float,
    expected: int = 200,
) -> Load:
    """`connections` connections, each one request at a time, for `seconds`. Only
    answers that arrive before the deadline count."""
    return asyncio.run(_closed(port, requests, connections, seconds, expected))


def open_loop(
    port: int, requests: Requests, *, rate: float, seconds: float, connections: int, expected: int
) -> Load:
    """`rate` requests a second for `seconds`, each on the first free connection (at
    most `connections`); each latency from the moment its request was due."""
    return asyncio.run(_open(port, requests, rate, seconds, connections, expected))


async def _closed(
    port: int,
    requests: Requests,
    connections: int,
    seconds: float,
    expected: int,
) -> Load:
    loop = asyncio.get_running_loop()
    load = Load(seconds, expected)
    sent = 0
    deadline = loop.time() + seconds

    def next_request() -> tuple[int, float] | None:
        nonlocal sent
        now = loop.time()
        if now >= deadline:
            return None
        sent += 1
        return sent - 1, now

    def answered(status: int, body: bytes, due: float) -> None:
        now = loop.time()
        if now <= deadline:
            load._answer(status, body, now - due)

    async def take() -> tuple[int, float] | None:
        return next_request()

    cpu = time.process_time()
    await _drive(port, requests, take, answered, connections, deadline + GRACE, load)
    load.cpu_seconds = time.process_time() - cpu
    return load


async def _open(
    port: int,
    requests: Requests,
    rate: float,
    seconds: float,
    connections: int,
    expected: int,
) -> Load:
    loop = asyncio.get_running_loop()
    load = Load(seconds, expected)
    total = int(rate * seconds)
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def schedule() -> None:
        start = loop.time()
        for index in range(total):
            at = start + index / rate
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due.put_nowait((index, at))
        for _ in range(connections):
            due.put_nowait(None)

    def answered(status: int, body: bytes, at: float) -> None:
        load._answer(status, body, loop.time() - at)

    cpu = time.process_time()
    scheduler = asyncio.create_task(schedule())
    await _drive(
        port, requests, due.get, answered, connections, loop.time() + seconds + GRACE, load
    )
    scheduler.cancel()
    load.cpu_seconds = time.process_time() - cpu
    unanswered = total - sum(load.statuses.values()) - sum(load.errors.values())
    if unanswered > 0:
        load.errors[f"not answered within {GRACE:g}s of the end"] += unanswered
    return load


async def _drive(
    port: int,
    requests: Requests,
    take: Callable[[], Awaitable[tuple[int, float] | None]],
    answered: Callable[[int, bytes, float], None],
    connections: int,
    give_up_at: float,
    load: Load,
) -> None:
    """Run `connections` clients until `take` runs dry or `give_up_at` passes; then
    close every connection opened."""
    loop = asyncio.get_running_loop()
    opened: list[_Connection] = []

    async def client() -> None:
        connection: _Connection | None = None
        while (job := await take()) is not None:
            index, due = job
            try:
                if connection is None or connection.lost:
                    connection = await _connect(loop, port)
                    opened.append(connection)
                status, body, close = await connection.exchange(requests(index))
            except OSError as error:
                load.errors[f"{type(error).__name__}: {str(error)[:70]}"] += 1
                if connection is not None:
                    connection.close()
                connection = None
                continue
            answered(status, body, due)
            if close:
                connection.close()
                connection = None

    clients = [asyncio.create_task(client()) for _ in range(connections)]
    try:
        await asyncio.wait_for(asyncio.gather(*clients), timeout=give_up_at - loop.time())
    except TimeoutError:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    finally:
        for connection in opened:
            connection.close()
        # Let the transports finish closing before the loop ends.
        await asyncio.sleep(0)


async def _connect(loop: asyncio.AbstractEventLoop, port: int) -> _Connection:
    _, protocol = await loop.create_connection(lambda: _Connection(loop), HOST, port)
    return protocol


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time. Answers must carry a
    Content-Length (every Django response does); `Connection: close` is honoured."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is None or self.answer.done():
            return
        try:
            parsed = _parse(self.buffer)
        except ValueError as error:
            self.answer.set_exception(ConnectionError(str(error)))
            return
        if parsed is not None:
            status, body, close, used = parsed
            del self.buffer[:used]
            self.answer.set_result((status, body, close))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.answer is not None and not self.answer.done():
            reason = str(exc) if exc else "closed by the server"
            self.answer.set_exception(ConnectionError(reason))

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send one request; (status, body, whether the server closes)."""
        assert self.transport is not None
        self.answer = self.loop.create_future()
        self.transport.write(request)
        return await self.answer

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _parse(buffer: bytearray) -> tuple[int, bytes, bool, int] | None:
    """A whole answer at the start of `buffer`: (status, body, close, bytes used), or
    None while it is still incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError("an answer without Content-Length")
    stop = head.find(b"\r\n", at + 2)
    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
    total = end + 4 + length
    if len(buffer) < total:
        return None
    close = b"\r\nconnection: close" in head
    return int(head[9:12]), bytes(buffer[end + 4 : total]), close, total
