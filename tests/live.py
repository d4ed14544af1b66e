"""Real processes for tests: gunicorn and Celery workers on the test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from tools import live_server
from tools.live_server import ROOT, free_port

__all__ = ["ROOT", "child_env", "database_url", "free_port", "gunicorn"]


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
