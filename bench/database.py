"""Fresh PostgreSQL databases for a run: dropped if they exist, created, migrated.

The benchmark database is created as a copy of `<name>_template`, a database migrated
once for each state of the migrations (their files, config/settings.py and the
installed packages, fingerprinted in the template's comment) and migrated again only
when that changes: `CREATE DATABASE … TEMPLATE` takes about a second where `migrate`
takes 13 to 20 s here. The copy is what `migrate` would have made, rows included.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


def recreate(database_url: str) -> None:
    """Drop the database named in the URL (closing its sessions) and create it empty."""
    name = sql.Identifier(name_of(database_url))
    server = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))


def migrate(
    python: str = sys.executable,
    settings: str = "config.settings",
    app: str | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """`manage.py migrate` with the given interpreter (each virtualenv has its own), of
    one app (and what it depends on) or of all, with `env` added to the environment."""
    subprocess.run(
        [python, "manage.py", "migrate", *([app] if app else []), "--settings", settings, "-v0"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
    )


def recreate_migrated(database_url: str) -> bool:
    """The database named in the URL, dropped and created again as a copy of its
    template, migrated by this virtualenv's `migrate`. True if the template had to be
    (re)built first."""
    return recreate_from_template(
        database_url,
        fingerprint=migrations_fingerprint(),
        build=lambda template_url: migrate(env={"DATABASE_URL": template_url}),
    )


def recreate_from_template(
    database_url: str, *, fingerprint: str, build: Callable[[str], None]
) -> bool:
    """Drop the database named in the URL and create it as a copy of `<name>_template`,
    which `build(template_url)` makes first when it is missing or was made for another
    `fingerprint` (kept as the template's comment). True if it was (re)built."""
    template = name_of(database_url) + "_template"
    template_url = with_name(database_url, template)
    server = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as admin:
        found = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [template],
        ).fetchone()
    rebuild = found is None or found[0] != fingerprint
    if rebuild:
        recreate(template_url)
        build(template_url)
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(template), sql.Literal(fingerprint)
                )
            )
    with psycopg.connect(server, autocommit=True) as admin:
        name = sql.Identifier(name_of(database_url))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(name, sql.Identifier(template))
        )
    return rebuild


def with_name(database_url: str, name: str) -> str:
    """The same server, another database (a URL)."""
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def migrations_fingerprint(*extra: str) -> str:
    """What decides the schema `migrate` makes: every migration of the project, the
    settings, and every installed package with its version (their migrations); and
    whatever else the caller names (files under the repository, other facts)."""
    digest = hashlib.sha256()
    files = [*sorted(ROOT.glob("*/migrations/*.py")), ROOT / "config" / "settings.py"]
    digest.update("\n".join(extra).encode() + b"\0")
    files += [ROOT / name for name in extra if (ROOT / name).is_file()]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(packages).encode())
    return "bench migrations " + digest.hexdigest()[:32]
