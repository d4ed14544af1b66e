"""What a run ran on: the machine, PostgreSQL's settings that move write figures, Redis,
the interpreter and the libraries, and the commit measured. Read by the runner and kept
in the run's JSON, so that a figure is never separated from where it was measured."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.database import ROOT


def describe(database_url: str, redis_url: str, redis_own: bool) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "postgresql": _postgresql(database_url),
        "redis": _redis(redis_url, redis_own),
        "python": platform.python_version(),
        "libraries": {
            name: _version(name)
            for name in ("django", "djangorestframework", "psycopg", "redis", "gunicorn", "celery")
        },
    }


def commit() -> str:
    """The commit measured, `-dirty` when tracked files differ from it. Read-only:
    GIT_OPTIONAL_LOCKS=0 keeps `git status` from rewriting the index, which other
    people's git commands in the same checkout may be holding."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, env=env
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _postgresql(database_url: str) -> dict[str, str]:
    settings = ("server_version", "fsync", "synchronous_commit", "shared_buffers")
    with psycopg.connect(database_url, autocommit=True) as connection:
        return {
            name: str(connection.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in settings
        }


def _redis(url: str, own: bool) -> dict[str, str]:
    from bench.redis_server import server_version

    parts = urlsplit(url)
    # No credentials in a file whose figures get pasted into documents.
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    server = "started by the run" if own else urlunsplit(parts._replace(netloc=netloc))
    return {"version": server_version(url), "server": server}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
