"""The processes a benchmark run starts for itself (gunicorn, a Celery worker and beat,
the webhook receiver, Redis when none is reachable): each in its own process group,
its output kept in a temporary file and shown only when it fails, and stopped — SIGTERM,
then SIGKILL to the whole group after a grace period — and waited for, whatever
happened."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO

from bench.database import ROOT

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the process has written so far."""
        self.log.flush()
        with open(self.log.name, "rb") as again:
            return again.read().decode(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class ChildFailed(RuntimeError):
    pass


@contextmanager
def child(
    name: str,
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    ready: Callable[[Child], bool] | None = None,
    ready_within: float = 60,
    stop_within: float = 15,
    ok_exits: Sequence[int] = (0, -signal.SIGTERM),
) -> Iterator[Child]:
    """Run `command` (cwd: the repository) until the block ends. `ready(child)` is
    polled every 0.1 s until it says yes; the process ending first, or `ready_within`
    seconds passing, raises ChildFailed with the end of its output. At the end it gets
    SIGTERM, and SIGKILL after `stop_within` seconds."""
    prefix = "bench-" + name.replace(" ", "-") + "-"
    with tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log") as log:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: a prefork worker's children are stopped with it.
            start_new_session=True,
        )
        running = Child(name, process, log)
        try:
            _wait_ready(running, ready, ready_within)
            yield running
        finally:
            _stop(running, stop_within)
        if process.returncode not in ok_exits:
            raise ChildFailed(f"{name} ended with {process.returncode}:\n{running.tail()}")


def _wait_ready(running: Child, ready: Callable[[Child], bool] | None, within: float) -> None:
    if ready is None:
        return
    deadline = time.monotonic() + within
    while True:
        try:
            if ready(running):
                return
        except OSError:
            pass
        if running.process.poll() is not None:
            raise ChildFailed(f"{running.name} ended at start:\n{running.tail()}")
        if time.monotonic() > deadline:
            raise ChildFailed(f"{running.name} not ready after {within:g}s:\n{running.tail()}")
        time.sleep(0.1)


def _stop(running: Child, within: float) -> None:
    process = running.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # Whatever it left behind in its group (prefork children, gunicorn workers).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def answers(port: int) -> bool:
    """Something accepts connections on the loopback port."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False
