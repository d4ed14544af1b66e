"""The ledger section: transfer throughput against the machine's ceiling and against
django-hordak, a hot destination, batches, and reads at depth."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from django.db import connections

from bench import database
from bench import ledger_pgbench as pgbench
from bench.context import Context
from bench.ledger_world import (
    CURRENCY,
    HOLDER,
    create,
    customer_id,
    open_customer,
    open_customers,
    open_with_history,
    settle_all,
    verify,
)
from bench.report import Figure, SectionResult, progress
from bench.threads import Run, Work, run_for
from ledger import selectors, services


@dataclass(frozen=True)
class Sizes:
    accounts: int = 1_000
    threads: int = 16
    seconds: int = 12  # each throughput run
    batch: int = 100
    batch_repeats: int = 15
    entries: int = 1_000_000  # the deep account's history
    shallow_entries: int = 10
    latency_samples: int = 2_000
    # Throughput figures alternate their two sides this many times (medians).
    rounds: int = 2


FULL = Sizes()
# Under 3 minutes for the whole `make bench QUICK=1` on a loaded machine (load 10 on 2
# cores): each second of ledger_vs_pgbench also leaves 2,000 to 3,000 transfers to settle
# before the next figure, at 300 to 1,000 a second.
QUICK = replace(FULL, seconds=3, rounds=1, batch_repeats=5, entries=50_000, latency_samples=300)


def run(context: Context) -> SectionResult:
    sizes = QUICK if context.quick else FULL
    result = SectionResult("ledger", sizes=asdict(sizes))
    progress(f"ledger: sizes {asdict(sizes)}")
    progress(f"ledger: opening and funding {sizes.accounts} customer accounts")
    open_customers(sizes.accounts)
    _ledger_vs_pgbench(context, sizes, result)
    deep, shallow = _settle_and_write_histories(sizes)
    _hot_vs_random(sizes, result)
    _batch_speedup(sizes, result)
    _reads_at_depth(sizes, result, deep, shallow)
    _vs_hordak(context, sizes, result)
    progress("ledger: ledger_verify over the whole benchmark database")
    problem = verify()
    result.raw["ledger_verify_ok"] = float(problem is None)
    progress(f"ledger: ledger_verify: {problem or 'the books are right'}")
    return result


# Work for the threads ------------------------------------------------------------------


def _random_pair(rng: random.Random, accounts: int) -> tuple[int, int]:
    source = rng.randint(1, accounts)
    destination = rng.randint(1, accounts - 1)
    return source, destination + (destination >= source)


def _create_random(accounts: int) -> Work:
    def work(rng: random.Random) -> None:
        source, destination = _random_pair(rng, accounts)
        create(customer_id(source), customer_id(destination), rng.randint(1, 100))

    return work


def _create_to(destination_id: str, accounts: int) -> Work:
    def work(rng: random.Random) -> None:
        create(customer_id(rng.randint(1, accounts)), destination_id, rng.randint(1, 100))

    return work


def _post_random(accounts: int) -> Work:
    def work(rng: random.Random) -> None:
        source, destination = _random_pair(rng, accounts)
        services.transfer_post(
            holder=HOLDER,
            livemode=False,
            source_id=customer_id(source),
            destination_id=customer_id(destination),
            amount=rng.randint(1, 100),
            currency=CURRENCY,
        )

    return work


def _threads(sizes: Sizes, work: Work) -> Run:
    run = run_for(sizes.seconds, sizes.threads, work)
    for error, count in run.errors().most_common():
        progress(f"ledger:   {count} failed: {error}")
    return run


# The figures ----------------------------------------------------------------------------


def _ledger_vs_pgbench(context: Context, sizes: Sizes, result: SectionResult) -> None:
    """Ours and pgbench in turn, on the same accounts. The transfers both leave pending
    are settled next (_settle_and_write_histories), so that the next figure starts from
    an empty queue."""
    trips = pgbench.round_trips(pgbench.create_one)
    script = pgbench.script(pgbench.capture_create(), sizes.accounts)

    def ours() -> dict[str, float]:
        return {"transfer_create_tps": _threads(sizes, _create_random(sizes.accounts)).rate()}

    def ceiling() -> dict[str, float]:
        found = pgbench.run(script, database_url=context.database_url, seconds=sizes.seconds)
        return {"pgbench_same_sql_tps": found.tps, "pgbench_failed": found.failed}

    medians = _alternate(
        sizes,
        {
            f"transfer_create, {sizes.threads} threads": ours,
            f"pgbench, the same statements, {sizes.threads} clients -j 2": ceiling,
        },
    )
    mine, machine = medians["transfer_create_tps"], medians["pgbench_same_sql_tps"]
    result.raw |= {"round_trips_per_transfer_create": trips, **medians}
    result.figures.append(
        Figure(
            "ledger_vs_pgbench",
            mine / machine,
            f"{mine:,.0f} vs {machine:,.0f} transfers/s; {trips} round trip(s) per transfer",
        )
    )


def _hot_vs_random(sizes: Sizes, result: SectionResult) -> None:
    """Creates from 16 threads, then settlement batches (transfer_settle_due, 500 at a
    time, back to back) until all of them are settled: both are timed."""
    hot = open_customer("hot destination").id

    def trial(label: str, work: Work) -> Callable[[], dict[str, float]]:
        def measure() -> dict[str, float]:
            created = _threads(sizes, work).rate()
            settled, seconds = settle_all()
            return {f"{label}_create_tps": created, f"{label}_settle_tps": settled / seconds}

        return measure

    medians = _alternate(
        sizes,
        {
            "random destinations": trial("random", _create_random(sizes.accounts)),
            "one hot destination": trial("hot", _create_to(hot, sizes.accounts)),
        },
    )
    result.raw |= medians
    hot_tps, random_tps = medians["hot_create_tps"], medians["random_create_tps"]
    result.figures.append(
        Figure(
            "hot_vs_random",
            hot_tps / random_tps,
            f"{hot_tps:,.0f} vs {random_tps:,.0f} transfers/s created; settled "
            f"{medians['hot_settle_tps']:,.0f} vs {medians['random_settle_tps']:,.0f}/s",
        )
    )


def _batch_speedup(sizes: Sizes, result: SectionResult) -> None:
    rng = random.Random(7)
    pairs = [_random_pair(rng, sizes.accounts) for _ in range(sizes.batch)]
    specs = [
        services.TransferSpec(customer_id(source), customer_id(destination), 1, CURRENCY)
        for source, destination in pairs
    ]

    def singles() -> None:
        for spec in specs:
            create(spec.source_id, spec.destination_id, spec.amount)

    def batch() -> None:
        services.transfer_batch_create(holder=HOLDER, livemode=False, specs=specs)

    progress(f"ledger: {sizes.batch} transfer_create vs one batch of {sizes.batch}")
    single_times, batch_times = [], []
    # One more round than measured: the first warms up and is dropped.
    for _ in range(sizes.batch_repeats + 1):
        single_times.append(_timed(singles))
        batch_times.append(_timed(batch))
    settle_all()
    single, together = statistics.median(single_times[1:]), statistics.median(batch_times[1:])
    result.raw |= {"single_x100_ms": single * 1000, "batch_of_100_ms": together * 1000}
    result.figures.append(
        Figure(
            "batch_speedup",
            single / together,
            f"{single * 1000:,.1f} ms vs {together * 1000:,.1f} ms (median)",
        )
    )


def _settle_and_write_histories(sizes: Sizes) -> tuple[str, str]:
    """Two steps in which nothing is timed, side by side on the 2 cores: settling what
    ledger_vs_pgbench left pending (a thread of its own, on its own connection), and
    writing the deep and the shallow account's histories. The deep and shallow ids."""
    progress(
        f"ledger: settling what both left pending, and writing {sizes.entries:,} entries "
        f"set-based (and {sizes.shallow_entries}) meanwhile"
    )
    settled: list[tuple[int, float]] = []

    def settle() -> None:
        try:
            settled.append(settle_all())
        finally:
            connections.close_all()

    settler = threading.Thread(target=settle)
    settler.start()
    try:
        deep = open_with_history(sizes.entries, "deep")
        shallow = open_with_history(sizes.shallow_entries, "shallow")
    finally:
        settler.join()
    if not settled:
        raise RuntimeError("settling what ledger_vs_pgbench left pending failed (above)")
    count, seconds = settled[0]
    progress(f"ledger:   settled {count:,} in {seconds:.1f}s")
    return deep, shallow


def _reads_at_depth(sizes: Sizes, result: SectionResult, deep: str, shallow: str) -> None:
    reads: dict[str, Callable[[str], object]] = {
        "balance_read": lambda account: selectors.account_balance(account_id=account),
        "history": lambda account: selectors.account_entries(account_id=account, limit=20),
    }
    depth = f"{sizes.entries // 1000}k" if sizes.entries < 1_000_000 else "1m"
    for name, read in reads.items():
        progress(f"ledger: {name} latency, {sizes.latency_samples} samples at each depth")
        deep_s, shallow_s = _median_latencies(read, deep, shallow, sizes.latency_samples)
        result.raw |= {f"{name}_deep_us": deep_s * 1e6, f"{name}_shallow_us": shallow_s * 1e6}
        result.figures.append(
            Figure(
                f"{name}_1m_vs_10",
                deep_s / shallow_s,
                f"{deep_s * 1e6:,.0f} us at {depth} entries vs {shallow_s * 1e6:,.0f} us at "
                f"{sizes.shallow_entries}",
            )
        )


def _vs_hordak(context: Context, sizes: Sizes, result: SectionResult) -> None:
    if context.bench_python is None:
        reason = "not measured: needs --bench-python (made by `make bench`)"
        result.figures.append(Figure("vs_hordak", None, reason))
        return
    hordak = _Hordak(context.bench_python, context.database_url)
    progress("ledger: django-hordak in .venv-bench: a fresh database with its accounts")
    if hordak.prepare(sizes.accounts):
        progress("ledger:   (its template was made first: migrate hordak, the accounts)")

    def ours() -> dict[str, float]:
        return {"transfer_post_tps": _threads(sizes, _post_random(sizes.accounts)).rate()}

    def theirs() -> dict[str, float]:
        return {"hordak_transfer_to_tps": hordak.throughput(sizes)}

    medians = _alternate(
        sizes,
        {
            f"transfer_post, {sizes.threads} threads": ours,
            f"hordak Account.transfer_to, {sizes.threads} threads": theirs,
        },
    )
    result.raw |= {"round_trips_per_transfer_post": pgbench.round_trips(_post_one), **medians}
    mine, hordak_tps = medians["transfer_post_tps"], medians["hordak_transfer_to_tps"]
    detail = f"{mine:,.0f} vs {hordak_tps:,.0f} transfers/s"
    result.figures.append(Figure("vs_hordak", mine / hordak_tps, detail))


def _post_one() -> None:
    _post_random(2)(random.Random(0))


# Helpers -------------------------------------------------------------------------------


def _alternate(sizes: Sizes, trials: dict[str, Callable[[], dict[str, float]]]) -> dict[str, float]:
    """Each trial once per round, in turn, so that the machine's drift falls on all of
    them alike; the median of every number over the rounds."""
    seen: dict[str, list[float]] = defaultdict(list)
    for round_ in range(1, sizes.rounds + 1):
        for label, trial in trials.items():
            progress(f"ledger: round {round_}/{sizes.rounds}: {label}, {sizes.seconds}s")
            for key, value in trial().items():
                seen[key].append(value)
    return {key: statistics.median(values) for key, values in seen.items()}


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _median_latencies(
    read: Callable[[str], object], deep: str, shallow: str, samples: int
) -> tuple[float, float]:
    """Median seconds per read of each account, the two interleaved so that the
    machine's noise falls on both alike; the first tenth warms up and is dropped."""
    deep_times, shallow_times = [], []
    for _ in range(samples + samples // 10):
        deep_times.append(_timed(lambda: read(deep)))
        shallow_times.append(_timed(lambda: read(shallow)))
    warm = samples // 10
    return statistics.median(deep_times[warm:]), statistics.median(shallow_times[warm:])


class _Hordak:
    """django-hordak, driven through bench.hordak_run in the benchmark virtualenv."""

    def __init__(self, python: str, database_url: str) -> None:
        self.python = python
        self.database_url = database_url

    def prepare(self, accounts: int) -> bool:
        """A fresh `<name>_hordak`: a copy of its template, which holds hordak's tables
        (only hordak's: its side never touches ours) and the accounts, made again when
        hordak, our migrations, the number of accounts or the driver changed. True if
        the template was made."""
        name = database.name_of(self.database_url) + "_hordak"
        version = self._run(
            ["-c", "import importlib.metadata as m; print(m.version('django-hordak'))"]
        )
        fingerprint = database.migrations_fingerprint(
            f"django-hordak {version.strip()}",
            f"accounts {accounts}",
            "bench/hordak_run.py",
            "bench/settings_hordak.py",
        )

        def build(template_url: str) -> None:
            env = {"BENCH_HORDAK_DB": database.name_of(template_url)}
            database.migrate(self.python, settings="bench.settings_hordak", app="hordak", env=env)
            self._call("setup", "--accounts", str(accounts), env=env)

        return database.recreate_from_template(
            database.with_name(self.database_url, name), fingerprint=fingerprint, build=build
        )

    def throughput(self, sizes: Sizes) -> float:
        counts = {
            "--accounts": sizes.accounts,
            "--seconds": sizes.seconds,
            "--threads": sizes.threads,
        }
        answer = self._call("run", *(str(part) for pair in counts.items() for part in pair))
        for error, count in answer["errors"].items():
            progress(f"ledger:   hordak: {count} failed: {error}")
        return float(answer["tps"])

    def _call(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        output = self._run(["-m", "bench.hordak_run", *args], env=env)
        answer: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return answer

    def _run(self, args: list[str], env: dict[str, str] | None = None) -> str:
        completed = subprocess.run(
            [self.python, *args],
            cwd=database.ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings_hordak", **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{completed.stderr}")
        return completed.stdout
