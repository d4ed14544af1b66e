"""Real processes for tests: gunicorn and Celery workers on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from tools import live_server
from tools.live_server import ROOT, free_port

__all__ = ["ROOT", "celery_worker", "child_env", "database_url", "free_port", "gunicorn"]


def database_url() -> str:
    """The URL of the database the tests run on, for a child process to share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), **extra}


@contextmanager
def gunicorn(**env: str) -> Iterator[str]:
    """A gunicorn serving the test database; yields its base URL."""
    with live_server.gunicorn(child_env(**env)) as base:
        yield base


@contextmanager
def celery_worker(*options: str, **env: str) -> Iterator[None]:
    """A Celery worker (one process, the solo pool) on the test database and broker, with
    `options` added to its command line; stopped afterwards."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker"),
            *("--pool", "solo", "--loglevel", "WARNING"),
            *("--without-heartbeat", "--without-gossip", "--without-mingle"),
            *options,
        ],
        cwd=ROOT,
        env=child_env(**env),
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
