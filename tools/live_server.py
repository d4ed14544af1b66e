"""A gunicorn of the project's own on a free loopback port, for what drives the API over
real HTTP: the live tests (tests/live.py), the fuzzer (tools/fuzz) and newman
(tools/postman). The bench and the fault test start theirs with options of their own,
but take their ports from `free_port` too."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from socket import socket
from typing import IO

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on now (the process given it binds it next)."""
    with socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until_answering(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Until `url` answers at all; raises if `process` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still booting
            if process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited ({process.returncode}) before {url} answered"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def gunicorn(
    env: Mapping[str, str],
    *,
    workers: int = 2,
    threads: int = 0,
    log: IO[bytes] | None = None,
    seconds: float = 60,
) -> Iterator[str]:
    """`config.wsgi` served by gunicorn (`threads`: gthread workers) with `env`; yields
    its base URL once /healthz answers, and stops it afterwards. Its output goes to
    `log` if given."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{port}"]
    command += ["--workers", str(workers), "--log-level", "warning"]
    if threads:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "PUBLIC_BASE_URL": base},
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    try:
        wait_until_answering(f"{base}/healthz", process, seconds)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
