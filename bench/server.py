"""A gunicorn of our own for the API section, on a free loopback port, stopped (and
waited for) when the section is done."""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.processes import HOST, child
from tools.live_server import free_port


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
    port = free_port()
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
    with child(
        "gunicorn",
        command,
        env={"DJANGO_SETTINGS_MODULE": settings, **env},
        ready=lambda _: _healthy(port),
        ready_within=30,
    ) as running:
        yield Running(port, running.pid)


def _healthy(port: int) -> bool:
    client = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        client.request("GET", "/healthz")
        client.getresponse().read()
        return True
    finally:
        client.close()
