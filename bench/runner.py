"""`python -m bench`: Redis (REDIS_URL, or one of the run's own), a fresh database, every
section, the table, the run kept in var/bench/latest.json and drawn in
docs/img/bench/*.png, and last one JSON line holding every figure.

The sections start the rest of what they measure: the API section its gunicorn, the
webhook section a Celery worker, beat and a webhook receiver."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import database, machine
from bench.context import Context
from bench.redis_server import redis_for_run
from bench.report import (
    SectionResult,
    elapsed,
    print_json,
    print_table,
    progress,
    run_record,
    save,
)

RESULTS = database.ROOT / "var" / "bench"
CHARTS = database.ROOT / "docs" / "img" / "bench"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    database_url = database.url()
    with redis_for_run(os.environ.get("REDIS_URL", "")) as chosen:
        os.environ["REDIS_URL"] = chosen.url
        return _run(args, parser, database_url, chosen.url, chosen.own, chosen.why)


def _run(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    database_url: str,
    redis_url: str,
    redis_own: bool,
    redis_why: str,
) -> int:
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    commit = machine.commit()
    load_before = os.getloadavg()
    mode = "quick" if args.quick else "full"
    progress(
        f"code at {commit}; {os.cpu_count()} cores; load average {_loads(load_before)} "
        "(1, 5, 15 min)"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    # No connection yet: setting Django up reads the settings and imports the apps.
    django.setup()
    # Imported after setup: the sections import models.
    from bench.sections import SECTIONS

    unknown = set(args.section or ()) - set(SECTIONS)
    if unknown:
        parser.error(f"no such section: {', '.join(sorted(unknown))} (have: {', '.join(SECTIONS)})")
    progress(f"Redis: {redis_why}")
    name = database.name_of(database_url)
    progress(f"fresh database {name}: a copy of {name}_template, migrated")
    if database.recreate_migrated(database_url):
        progress(f"  (the migrations changed: {name}_template was migrated again first)")
    about = machine.describe(database_url, redis_url, redis_own)
    progress(
        f"PostgreSQL {about['postgresql']['server_version'].split()[0]} "
        f"(fsync {about['postgresql']['fsync']}), Redis {about['redis']['version']}"
    )
    context = Context(quick=args.quick, database_url=database_url, bench_python=args.bench_python)
    results: list[SectionResult] = []
    for name in args.section or list(SECTIONS):
        progress(f"section {name} ({mode} mode)")
        results.append(_section(name, SECTIONS[name], context))
    # Other processes on the machine skew every figure; the load says how much.
    load_after = os.getloadavg()
    progress(f"load average {_loads(load_before)} at the start, {_loads(load_after)} at the end")
    print_table(results)
    record = run_record(
        results,
        mode=mode,
        commit=commit,
        started_at=started_at.isoformat(),
        seconds=round(elapsed()),
        load_average={"start": list(load_before), "end": list(load_after)},
        machine=about,
    )
    failed = [r.name for r in results if r.error]
    complete = not args.section or set(args.section) == set(SECTIONS)
    ok = _keep(record, complete=complete, charts=not args.no_charts)
    print_json(record)
    return 1 if failed or not ok else 0


def _section(name: str, run: Callable[[Context], SectionResult], context: Context) -> SectionResult:
    """A section that raises still gives a result: no figures, the error. The run goes
    on with the next section and ends with exit status 1."""
    started = elapsed()
    try:
        result = run(context)
    except Exception as error:
        traceback.print_exc()
        first = (str(error).strip().splitlines() or [""])[0]
        result = SectionResult(name, error=f"{type(error).__name__}: {first[:200]}")
        progress(f"section {name} FAILED: {result.error}")
    result.seconds = elapsed() - started
    progress(f"section {name}: {result.seconds:.0f}s")
    return result


def _keep(record: dict[str, Any], *, complete: bool, charts: bool) -> bool:
    """A run of every section becomes var/bench/latest.json and the charts; a run of
    some sections only goes to var/bench/partial.json, leaving the last complete run in
    place."""
    try:
        if not complete:
            path = save(record, RESULTS, complete=False)
            progress(f"some sections only: kept in {_relative(path)} (latest.json unchanged)")
            return True
        path = save(record, RESULTS, complete=True)
        progress(f"kept in {_relative(path)} (and one line more in runs.jsonl)")
        if charts:
            from bench import charts as drawing

            drawn = drawing.draw(record, CHARTS)
            progress("charts: " + ", ".join(_relative(p) for p in drawn))
        return True
    except Exception:
        traceback.print_exc()
        progress("could not keep the run or draw its charts (above)")
        return False


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(database.ROOT))
    except ValueError:
        return str(path)


def _loads(loads: tuple[float, float, float]) -> str:
    return ", ".join(f"{load:.2f}" for load in loads)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--section", action="append", help="run only this section (repeatable)")
    parser.add_argument(
        "--bench-python",
        help="python of the benchmark virtualenv with django-hordak (made by `make bench`)",
    )
    parser.add_argument(
        "--no-charts", action="store_true", help="keep the JSON but do not redraw the charts"
    )
    return parser
