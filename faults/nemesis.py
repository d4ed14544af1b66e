"""The faults, at random moments from a seeded RNG: SIGKILL a gunicorn worker (its
master starts another), `pg_ctl restart -m immediate` on our cluster, Redis paused
(SIGSTOP) or shut down for a few seconds, SIGKILL the Celery worker (a new one is
started). Kinds come in shuffled rounds, so a short run still meets every one."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from faults.processes import CeleryProcess, Gunicorn, PostgresCluster, RedisServer

KINDS = (
    "gunicorn_worker_kill",
    "postgres_restart",
    "redis_pause",
    "redis_restart",
    "celery_worker_kill",
)


@dataclass
class Nemesis:
    postgres: PostgresCluster
    redis: RedisServer
    gunicorn: Gunicorn
    worker: CeleryProcess
    rng: random.Random
    start_at: float  # time.monotonic()
    stop_at: float
    gap: tuple[float, float]  # seconds between two faults
    max_faults: int
    stop: threading.Event
    kinds: tuple[str, ...] = KINDS
    injected: Counter[str] = field(default_factory=Counter)
    # (wall-clock start, end, kind, detail) of each fault injected
    log: list[tuple[float, float, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished_at: float = 0.0  # wall clock: no fault after this

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.finished_at = time.time()

    def _run(self) -> None:
        round_: list[str] = []
        if not self.kinds:
            return
        self.stop.wait(max(0.0, self.start_at - time.monotonic()))
        while sum(self.injected.values()) < self.max_faults:
            if self.stop.wait(self.rng.uniform(*self.gap)) or time.monotonic() >= self.stop_at:
                return
            if not round_:
                round_ = list(self.kinds)
                self.rng.shuffle(round_)
            kind = round_.pop()
            started = time.time()
            try:
                detail = getattr(self, kind)()
            except Exception as exc:  # a fault that could not be injected is reported
                self.errors.append(f"{kind}: {exc!r}")
                continue
            self.injected[kind] += 1
            self.log.append((started, time.time(), kind, detail))

    def gunicorn_worker_kill(self) -> str:
        workers = self.gunicorn.worker_pids()
        if not workers:
            raise RuntimeError("gunicorn has no worker to kill")
        victim = self.rng.choice(workers)
        os.kill(victim, signal.SIGKILL)
        return f"pid {victim}"

    def postgres_restart(self) -> str:
        self.postgres.restart_immediate()
        return "-m immediate"

    def redis_pause(self) -> str:
        seconds = self.rng.uniform(2.0, 5.0)
        self.redis.pause()
        try:
            self.stop.wait(seconds)
        finally:
            self.redis.resume()
        return f"SIGSTOP {seconds:.1f}s"

    def redis_restart(self) -> str:
        seconds = self.rng.uniform(2.0, 5.0)
        self.redis.stop()
        self.stop.wait(seconds)
        self.redis.start()
        return f"down {seconds:.1f}s"

    def celery_worker_kill(self) -> str:
        victim = self.worker.process.pid if self.worker.process else None
        self.worker.kill()
        self.stop.wait(self.rng.uniform(0.5, 3.0))
        self.worker.start()
        return f"pid {victim}"
