"""A gunicorn of our own for the API section, on a free loopback port, stopped (and
waited for) when the section is done."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from bench.database import ROOT
from bench.loadgen import HOST


@dataclass(frozen=True)
class Gunicorn:
    workers: int
    threads: int
    # gthread keeps connections alive (sync closes each after one answer).
    worker_class: str = "gthread"
    # Seconds an idle keep-alive connection stays open: longer than any run, so that
    # the server never closes a connection the load generator is about to use.
    keep_alive: int = 120

    def describe(self) -> str:
        return (
            f"gunicorn --workers {self.workers} --worker-class {self.worker_class} "
            f"--threads {self.threads}"
        )


@dataclass(frozen=True)
class Running:
    port: int
    # The master's; the workers are its children.
    pid: int


@contextmanager
def serve(config: Gunicorn, *, settings: str, env: dict[str, str]) -> Iterator[Running]:
    """Start gunicorn serving config.wsgi with `settings`; yield it once it answers
    /healthz; terminate it at the end (killed after 15 s)."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--threads",
        str(config.threads),
        "--keep-alive",
        str(config.keep_alive),
        "--backlog",
        "1024",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": settings, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, port, log)
            yield Running(port, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode not in (0, -15):
            raise RuntimeError(f"gunicorn ended with {process.returncode}:\n{_tail(log)}")


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client = http.client.HTTPConnection(HOST, port, timeout=5)
            client.request("GET", "/healthz")
            client.getresponse().read()
            client.close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{_tail(log)}") from None
            time.sleep(0.2)


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").splitlines()[-30:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
