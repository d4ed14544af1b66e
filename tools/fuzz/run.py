"""Fuzz the public API from its own OpenAPI schema with Schemathesis.

    python -m tools.fuzz.run [--examples N] [--seed S] [--phases ...]   (or: make fuzz)

Starts everything it needs: a fresh database (PostgreSQL when DATABASE_URL is set: a
database of its own on that server, FUZZ_DATABASE or openpay_fuzz, dropped and created
again; SQLite under var/fuzz/ otherwise), migrated and seeded with `seed_demo --json`
for two organizations' test-mode secret keys; then gunicorn on a free loopback port,
with the rate limits raised out of reach (every request comes from one address and one
key, and a 429 would hide the answer under test) and loopback webhook targets refused,
as in production. Redis is used when REDIS_URL is set.

Schemathesis (settings in schemathesis.toml, hooks in hooks.py) loads
`<base>/api/schema/` and runs every operation through the schema's examples, boundary
coverage and random fuzzing, with every check that applies; then, in a run of its own,
stateful sequences along the schema's OpenAPI links.

Prints Schemathesis's report and a table of what each operation answered, and ends with
one JSON line of figures. Exits 1 when any check failed or a test could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql

from tools.live_server import gunicorn

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / "var" / "fuzz"
REPORTS = SCRATCH / "report"
CONFIG = Path(__file__).with_name("schemathesis.toml")
DEFAULT_SEED = 20261101
DEFAULT_EXAMPLES = 100
DEFAULT_DATABASE = "openpay_fuzz"
# The stateful phase gets this many times the examples: its sequences cover the links slowly.
STATEFUL_FACTOR = 2
# Far above what the fuzzer sends: a 429 would hide the answer that was under test.
UNTHROTTLED = "1000000"


def main(argv: list[str] | None = None) -> int:
    options = _arguments(argv)
    started = time.monotonic()
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)
    env = _server_env(_fresh_database())
    _say("migrating and seeding a fresh database")
    _manage(env, "migrate", "-v0")
    world = json.loads(_manage(env, "seed_demo", "--json"))
    with (
        (SCRATCH / "server.log").open("wb") as log,
        gunicorn(env, workers=2, threads=2, log=log) as base,
    ):
        _prepare(base, world)
        _say(f"fuzzing {base}/api/schema/ (seed {options.seed}, {options.examples} examples)")
        runs = [_schemathesis(base, options, name, phases) for name, phases in _runs(options)]
    statuses = _merged([run.statuses for run in runs])
    _print_statuses(statuses)
    figures = _figures(runs, statuses, options, time.monotonic() - started)
    print(json.dumps(figures), flush=True)
    return 0 if figures["ok"] else 1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples",
        type=int,
        default=int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EXAMPLES),
        help="test cases per operation and phase (FUZZ_EXAMPLES; default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("FUZZ_SEED") or DEFAULT_SEED),
        help="Hypothesis seed (FUZZ_SEED; default %(default)s)",
    )
    parser.add_argument(
        "--phases",
        default=os.environ.get("FUZZ_PHASES") or "examples,coverage,fuzzing,stateful",
        help="Schemathesis phases to run (FUZZ_PHASES; default %(default)s)",
    )
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(f"fuzz: {message}", flush=True)


# The server ----------------------------------------------------------------------------


def _fresh_database() -> str:
    """A database URL for this run alone: dropped and created again each time."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return f"sqlite:///{SCRATCH / 'openpay.sqlite3'}"
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"fuzz: DATABASE_URL must be a PostgreSQL URL, not {parts.scheme}://")
    name = os.environ.get("FUZZ_DATABASE") or DEFAULT_DATABASE
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "VAR_DIR": str(SCRATCH),
        "DEBUG": "false",
        # Webhook targets are judged as in production: loopback and private addresses
        # are refused (nothing is delivered here: no worker runs).
        "WEBHOOKS_ALLOW_LOOPBACK": "false",
        "API_RATE_LIMIT": UNTHROTTLED,
        "API_IP_RATE_LIMIT": UNTHROTTLED,
    }


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


# What the fuzzer is given ----------------------------------------------------------------

AUTH = SCRATCH / "auth.json"
WORLD = SCRATCH / "world.json"
FUNDING = 1_000_000
SETTLED_TRANSFERS = 20


def _prepare(base: str, world: dict[str, Any]) -> None:
    """The two organizations' keys (auth.json, for Schemathesis) and the merchant's
    same-currency account pairs (world.json, for hooks.py): each sandbox account gets a
    funded twin in its currency."""
    merchant, customer = world["organizations"][:2]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {merchant['test_secret_key']}"
    pairs = []
    for account in merchant["accounts"]:
        twin = _call(api, "POST", f"{base}/v1/accounts", {"currency": account["currency"]})
        _call(
            api, "POST", f"{base}/v1/test_helpers/accounts/{twin['id']}/fund", {"amount": FUNDING}
        )
        for source, destination in ((account["id"], twin["id"]), (twin["id"], account["id"])):
            pairs.append(
                {
                    "source_account": source,
                    "destination_account": destination,
                    "currency": account["currency"],
                }
            )
    # Settled transfers for the fuzzer to reverse: a settled one is three steps deep
    # (create, settle, reverse), where random sequences seldom get.
    settled = []
    for index in range(SETTLED_TRANSFERS):
        pair = pairs[index % len(pairs)]
        transfer = _call(
            api, "POST", f"{base}/v1/transfers", {**pair, "amount": 100, "settlement": "manual"}
        )
        _call(api, "POST", f"{base}/v1/transfers/{transfer['id']}/settle", {})
        settled.append(transfer["id"])
    other = [account["id"] for account in customer["accounts"]]
    WORLD.write_text(
        json.dumps({"pairs": pairs, "settled_transfers": settled, "other_tenant_accounts": other})
    )
    AUTH.write_text(
        json.dumps(
            {
                "auth": [
                    {
                        "name": name,
                        "fixedHeaders": [
                            {"name": "Authorization", "value": f"Bearer {org['test_secret_key']}"}
                        ],
                    }
                    for name, org in (("merchant", merchant), ("customer", customer))
                ]
            }
        )
    )


def _call(api: requests.Session, method: str, url: str, body: dict[str, Any]) -> Any:
    response = api.request(method, url, json=body, timeout=30)
    response.raise_for_status()
    return response.json()


# Schemathesis ---------------------------------------------------------------------------


def _config(options: argparse.Namespace) -> Path:
    """tools/fuzz/schemathesis.toml, with the stateful phase's number of scenarios, which
    no command-line option sets apart from the other phases'."""
    effective = SCRATCH / "schemathesis.toml"
    effective.write_text(
        CONFIG.read_text()
        + f"\n[phases.stateful.generation]\nmax-examples = {options.examples * STATEFUL_FACTOR}\n"
    )
    return effective


STATELESS = ("examples", "coverage", "fuzzing")


def _runs(options: argparse.Namespace) -> list[tuple[str, str]]:
    """The stateful phase runs in a Schemathesis run of its own, after the others: run
    after them in one process, it stopped after a varying handful of scenarios (14 to 96
    of the same budget), alone it runs its full budget every time."""
    wanted = [phase.strip() for phase in options.phases.split(",") if phase.strip()]
    runs = []
    stateless = [phase for phase in wanted if phase in STATELESS]
    if stateless:
        runs.append(("stateless", ",".join(stateless)))
    if "stateful" in wanted:
        runs.append(("stateful", "stateful"))
    return runs


@dataclass
class Run:
    name: str
    exit_code: int
    report: dict[str, Any]
    statuses: dict[str, dict[str, int]]
    scenarios: int | None
    links: tuple[int, int] | None  # covered, selected


def _schemathesis(base: str, options: argparse.Namespace, name: str, phases: str) -> Run:
    report = REPORTS / f"{name}.json"
    statuses = SCRATCH / f"statuses-{name}.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config(options)),
        "run",
        f"{base}/api/schema/",
        "--url",
        base,
        "--seed",
        str(options.seed),
        "--max-examples",
        str(options.examples),
        "--phases",
        phases,
        "--report",
        "json,junit",
        "--report-dir",
        str(REPORTS),
        "--report-json-path",
        str(report),
        "--report-junit-path",
        str(REPORTS / f"{name}.junit.xml"),
    ]
    env = {
        **os.environ,
        "FUZZ_AUTH": str(AUTH),
        "FUZZ_WORLD": str(WORLD),
        "FUZZ_STATUSES": str(statuses),
        "SCHEMATHESIS_HOOKS": "tools.fuzz.hooks",
    }
    scenarios = links = None
    # Schemathesis's own report streams through; the stateful summary is read off it
    # (the JSON report has no link coverage).
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, errors="replace"
    ) as st:
        assert st.stdout is not None
        for line in st.stdout:
            print(line, end="", flush=True)
            if found := re.search(r"Scenarios:\s+(\d+)", line):
                scenarios = int(found[1])
            if found := re.search(r"API Links:\s+(\d+) covered / (\d+) selected", line):
                links = (int(found[1]), int(found[2]))
    return Run(
        name=name,
        exit_code=st.returncode,
        report=json.loads(report.read_text()),
        statuses=json.loads(statuses.read_text()) if statuses.exists() else {},
        scenarios=scenarios,
        links=links,
    )


def _merged(tables: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    merged: dict[str, Counter[str]] = {}
    for table in tables:
        for operation, counts in table.items():
            merged.setdefault(operation, Counter()).update(counts)
    return {operation: dict(counts) for operation, counts in merged.items()}


def _print_statuses(statuses: dict[str, dict[str, int]]) -> None:
    """Per operation: how many answers of each class, so that an operation the fuzzer
    never got through to a success shows."""
    print(f"\n{'operation':<56} {'2xx':>6} {'4xx':>6} {'5xx':>6}  statuses")
    for operation, counts in sorted(statuses.items()):
        by_class = {c: sum(n for s, n in counts.items() if s[0] == c) for c in "245"}
        detail = " ".join(f"{s}:{n}" for s, n in sorted(counts.items()))
        print(f"{operation:<56} {by_class['2']:>6} {by_class['4']:>6} {by_class['5']:>6}  {detail}")
    print(flush=True)


def _figures(
    runs: list[Run],
    statuses: dict[str, dict[str, int]],
    options: argparse.Namespace,
    seconds: float,
) -> dict[str, Any]:
    failures: Counter[str] = Counter()
    for run in runs:
        for group in run.report["failures"]:
            failures[f"{group['code']} {group['title']}"] += group["count"]
    errors = sum(error["count"] for run in runs for error in run.report["errors"])
    operations = max((run.report["operations"] or {}).get("tested", 0) for run in runs)
    stateful = next((run for run in runs if run.name == "stateful"), None)
    return {
        "fuzz": "schemathesis",
        "ok": all(run.exit_code == 0 for run in runs) and not failures and not errors,
        "operations": operations,
        "operations_in_schema": max(
            (run.report["operations"] or {}).get("total", 0) for run in runs
        ),
        "operations_with_2xx": sum(
            1 for counts in statuses.values() if any(s.startswith("2") for s in counts)
        ),
        "cases": sum(run.report["test_cases"]["generated"] for run in runs),
        "requests": sum(sum(counts.values()) for counts in statuses.values()),
        "server_errors": sum(
            n for counts in statuses.values() for s, n in counts.items() if s.startswith("5")
        ),
        "stateful_scenarios": stateful.scenarios if stateful else 0,
        "links_covered": stateful.links[0] if stateful and stateful.links else 0,
        "links_in_schema": stateful.links[1] if stateful and stateful.links else 0,
        "failures": sum(failures.values()),
        "failures_by_check": dict(failures),
        "errors": errors,
        "seed": options.seed,
        "examples_per_operation": options.examples,
        "phases": {
            phase: state["status"]
            for run in runs
            for phase, state in (run.report["phases"] or {}).items()
            if (run.name == "stateful") == (phase == "stateful")
        },
        "duration_s": round(seconds, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
