"""Fresh PostgreSQL databases for a run: dropped if they exist, created, migrated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent


def url() -> str:
    """The benchmark database, from DATABASE_URL (postgres://.../openpay_bench)."""
    value = os.environ.get("DATABASE_URL", "")
    if not value.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: DATABASE_URL must point at PostgreSQL (see `make bench`)")
    return value


def name_of(database_url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(database_url)["dbname"])


def sibling(database_url: str, suffix: str) -> str:
    """The same server, the database `<name><suffix>` (a connection string)."""
    return psycopg.conninfo.make_conninfo(database_url, dbname=name_of(database_url) + suffix)


def recreate(database_url: str) -> None:
    """Drop the database named in the URL (closing its sessions) and create it empty."""
    name = sql.Identifier(name_of(database_url))
    server = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))


def migrate(python: str = sys.executable, settings: str = "config.settings") -> None:
    """`manage.py migrate` with the given interpreter (each virtualenv has its own)."""
    subprocess.run(
        [python, "manage.py", "migrate", "--verbosity", "0", "--settings", settings],
        cwd=ROOT,
        check=True,
    )
