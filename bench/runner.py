"""`python -m bench`: prepare a fresh database, run every section, print the table and
end with one JSON line holding every figure."""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Sequence

from bench import database
from bench.context import Context
from bench.report import SectionResult, print_json, print_table, progress


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    database_url = database.url()
    commit = _commit()
    load_before = os.getloadavg()[0]
    progress(f"code at {commit}; {os.cpu_count()} cores; load average {load_before:.2f}")
    progress(f"fresh database {database.name_of(database_url)}: create and migrate")
    database.recreate(database_url)
    database.migrate()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # Imported after setup: the sections import models.
    from bench.sections import SECTIONS

    unknown = set(args.section or ()) - set(SECTIONS)
    if unknown:
        parser.error(f"no such section: {', '.join(sorted(unknown))} (have: {', '.join(SECTIONS)})")
    context = Context(quick=args.quick, database_url=database_url, bench_python=args.bench_python)
    results: list[SectionResult] = []
    for name in args.section or list(SECTIONS):
        progress(f"section {name} ({'quick' if args.quick else 'full'} mode)")
        results.append(SECTIONS[name](context))
    # Other processes on the machine skew every figure; the load says how much.
    load = (load_before, os.getloadavg()[0])
    progress(f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end")
    print_table(results)
    print_json(results, mode="quick" if args.quick else "full", commit=commit, load=load)
    return 0


def _commit() -> str:
    """The commit measured, `-dirty` when tracked files differ from it."""
    completed = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=database.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--section", action="append", help="run only this section (repeatable)")
    parser.add_argument(
        "--bench-python",
        help="python of the benchmark virtualenv with django-hordak (made by `make bench`)",
    )
    return parser
