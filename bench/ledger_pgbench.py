"""The machine's ceiling for a transfer: the very statements `transfer_create` sends,
captured from a real call, replayed by pgbench with random account pairs."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from bench.ledger_world import ID_PREFIX, create, customer_id

# An amount no other parameter of the statements happens to equal.
_MARKER_AMOUNT = 4_243
_ID_DIGITS = len(customer_id(0)) - len(ID_PREFIX)


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...]
    # Sent inside a transaction the service opened (BEGIN ... COMMIT around it).
    in_transaction: bool


def round_trips(call: Callable[[], object]) -> int:
    """Statements `call` sends, BEGIN and COMMIT included: each is one round trip to the
    server. Called once before counting, to warm per-process caches (the currencies)."""
    call()
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def create_one() -> None:
    """The transfer whose statements are captured: account 1 to account 2."""
    create(customer_id(1), customer_id(2), 1)


def capture_create() -> list[Statement]:
    """The statements (with their parameters) of one transfer_create from account 1
    to account 2, savepoints included; executemany is one statement per parameter set.
    BEGIN and COMMIT do not pass through here: `in_transaction` says whether they
    were sent."""
    create_one()
    statements: list[Statement] = []

    def record(execute: Callable[..., Any], query: str, params: Any, many: bool, ctx: Any) -> Any:
        for one in params if many else [params]:
            statements.append(Statement(query, tuple(one or ()), connection.in_atomic_block))
        return execute(query, params, many, ctx)

    with connection.execute_wrapper(record):
        create(customer_id(1), customer_id(2), _MARKER_AMOUNT)
    return statements


def script(statements: list[Statement], accounts: int) -> str:
    """A pgbench script: the statements, between random accounts, in a transaction
    exactly when the service opened one."""
    source, destination = customer_id(1), customer_id(2)
    substitutes = {
        source: f"('{ID_PREFIX}' || lpad(:src::text, {_ID_DIGITS}, '0'))",
        destination: f"('{ID_PREFIX}' || lpad(:dst::text, {_ID_DIGITS}, '0'))",
        _MARKER_AMOUNT: ":amount",
    }

    def render(value: Any) -> str:
        if isinstance(value, str | int) and value in substitutes:
            return substitutes[value]
        if isinstance(value, dt.datetime):
            return "now()"
        if isinstance(value, str) and value.startswith("tr_"):
            # Unique and rising like the ULIDs the service makes: time, then client.
            return (
                "('tr_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || 'pgb' "
                "|| lpad(:client_id::text, 3, '0'))"
            )
        return sql.Literal(value).as_string(connection.connection)

    body = [
        (s.sql % tuple(render(p) for p in s.params)).replace("\n", " ") + ";" for s in statements
    ]
    if any(s.in_transaction for s in statements):
        body = ["BEGIN;", *body, "COMMIT;"]
    lines = [
        f"\\set src random(1, {accounts})",
        f"\\set dst random(1, {accounts - 1})",
        "\\set dst CASE WHEN :dst >= :src THEN :dst + 1 ELSE :dst END",
        "\\set amount random(1, 100)",
        *body,
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    failed: int


def run(text: str, *, database_url: str, seconds: int) -> PgbenchResult:
    """The script from 16 clients on 2 threads (-j 2) for `seconds`."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise RuntimeError("pgbench is not on PATH (apt-get install postgresql-client)")
    with _script_file(text) as path:
        command = [pgbench, "--no-vacuum", "--file", str(path), "--time", str(seconds)]
        command += ["--client", "16", "--jobs", "2", database_url]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
    tps = re.search(r"^tps = ([\d.]+)", completed.stdout, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", completed.stdout, re.MULTILINE)
    if tps is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{completed.stdout}")
    return PgbenchResult(float(tps.group(1)), int(failed.group(1)) if failed else 0)


@contextmanager
def _script_file(text: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as directory:
        path = Path(directory) / "transfer_create.sql"
        path.write_text(text)
        yield path
