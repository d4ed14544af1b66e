"""The Redis a run uses: REDIS_URL when it answers, otherwise a redis-server of the run's
own on a free loopback port (no persistence, its files in a temporary folder), stopped
when the run ends. A shared Redis that is down is never started or restarted here: it
may belong to someone else."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from bench.processes import HOST, child
from tools.live_server import free_port

# No snapshots, no append-only file, the log to standard output (kept by the runner).
_NOTHING_KEPT = ("--save", "", "--appendonly", "no", "--logfile", "")


@dataclass(frozen=True)
class RedisChoice:
    url: str
    # Started for this run (and stopped at its end), or REDIS_URL's.
    own: bool
    why: str


@contextmanager
def redis_for_run(configured: str) -> Iterator[RedisChoice]:
    """`configured` (REDIS_URL, possibly empty) if it answers PING, else our own."""
    if configured:
        problem = _ping(configured)
        if problem is None:
            yield RedisChoice(configured, own=False, why="REDIS_URL answers")
            return
        why = f"REDIS_URL does not answer ({problem}): started redis-server of our own"
    else:
        why = "REDIS_URL is not set: started redis-server of our own"
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(f"bench: {why.split(':')[0]} and redis-server is not installed")
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-") as folder,
        child(
            "redis-server",
            [server, "--bind", HOST, "--port", str(port), *_NOTHING_KEPT, "--dir", folder],
            ready=lambda _: _ping(f"redis://{HOST}:{port}/0") is None,
            ready_within=20,
        ),
    ):
        yield RedisChoice(f"redis://{HOST}:{port}/0", own=True, why=why)


def server_version(url: str) -> str:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def _ping(url: str) -> str | None:
    """None when the server answers PING, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        return None
    except redis.RedisError as error:
        return str(error) or type(error).__name__
    finally:
        client.close()
