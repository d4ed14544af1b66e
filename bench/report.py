"""The figures and their goals, what a section hands back, and how the runner prints and
keeps a run (the table, the one JSON line, var/bench/latest.json)."""

from __future__ import annotations

import json
import math
import operator
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


def elapsed() -> float:
    """Seconds since the benchmark process started."""
    return time.monotonic() - _STARTED


_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Goal:
    op: Literal[">=", "<=", "<"]
    bound: float

    def met(self, value: float) -> bool:
        return bool(_COMPARE[self.op](value, self.bound))

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"

    @classmethod
    def parse(cls, text: str) -> Goal:
        """The inverse of str(): `>= 0.5`."""
        op, bound = text.split()
        if op not in _COMPARE:
            raise ValueError(f"not a goal: {text!r}")
        return cls(op, float(bound))  # type: ignore[arg-type]


# Every figure `make bench` publishes, in the order of the table and the JSON line, with
# its goal (from the ledger, API and webhook issues) and the section that measures it.
# The JSON line always holds all of them: null for one that could not be measured.
GOALS: dict[str, Goal] = {
    "ledger_vs_pgbench": Goal(">=", 0.5),
    "hot_vs_random": Goal(">=", 0.8),
    "batch_speedup": Goal(">=", 10),
    "balance_read_1m_vs_10": Goal("<=", 1.2),
    "history_1m_vs_10": Goal("<=", 1.5),
    "vs_hordak": Goal(">=", 3),
    "api_transfer_vs_ceiling": Goal(">=", 0.4),
    "api_balance_vs_ceiling": Goal(">=", 0.7),
    "api_transfer_p99_ms": Goal("<", 50),
    "webhook_vs_plain_post": Goal(">=", 0.5),
    "webhook_latency_p50_ms": Goal("<", 250),
    "webhook_latency_p99_ms": Goal("<", 1000),
}
SECTION_OF: dict[str, str] = {
    **dict.fromkeys(list(GOALS)[:6], "ledger"),
    **dict.fromkeys(list(GOALS)[6:9], "api"),
    **dict.fromkeys(list(GOALS)[9:], "webhooks"),
}


@dataclass(frozen=True)
class Figure:
    key: str
    # None when the figure could not be measured (the reason is in `detail`).
    value: float | None
    detail: str

    def __post_init__(self) -> None:
        if self.key not in GOALS:
            raise ValueError(f"{self.key} is not a figure of make bench (see bench.report.GOALS)")

    @property
    def goal(self) -> Goal:
        return GOALS[self.key]


@dataclass
class SectionResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    # The throughputs and latencies the figures are ratios of.
    raw: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int | float | str] = field(default_factory=dict)
    seconds: float = 0.0
    # Set when the section raised: what went wrong, in one line.
    error: str | None = None


def met(value: float | None, goal: Goal) -> str:
    return "n/a" if value is None else ("yes" if goal.met(value) else "NO")


def print_table(results: list[SectionResult]) -> None:
    rows = [("figure", "value", "goal", "met", "from")]
    for result in results:
        for figure in result.figures:
            value = "n/a" if figure.value is None else f"{figure.value:.3f}"
            verdict = met(figure.value, figure.goal)
            rows.append((figure.key, value, str(figure.goal), verdict, figure.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]).rstrip())
    for result in results:
        print(
            f"\n{result.name} ({result.seconds:.0f} s): sizes "
            + ", ".join(f"{k}={v}" for k, v in result.sizes.items())
        )
        if result.error:
            print(f"  FAILED: {result.error}")
        for key, number in result.raw.items():
            print(f"  {key:<40} {number:>14,.3f}")
    sys.stdout.flush()


def run_record(results: list[SectionResult], **about: Any) -> dict[str, Any]:
    """Everything about a run, as one JSON object: `about` (mode, commit, load average,
    machine…), every figure at the top level (null when not measured; ratios and
    milliseconds as plain numbers), then their goals and details, the raw numbers and
    the sizes."""
    figures = {figure.key: figure for result in results for figure in result.figures}
    record: dict[str, Any] = dict(about)
    record.update({key: _plain(figures[key].value) if key in figures else None for key in GOALS})
    record["goals"] = {key: str(goal) for key, goal in GOALS.items()}
    record["details"] = {key: figures[key].detail for key in GOALS if key in figures}
    record["sections"] = {
        r.name: {"seconds": round(r.seconds, 1), "error": r.error} for r in results
    }
    record["raw"] = {f"{r.name}.{k}": _plain(v) for r in results for k, v in r.raw.items()}
    record["sizes"] = {f"{r.name}.{k}": v for r in results for k, v in r.sizes.items()}
    return record


def print_json(record: dict[str, Any]) -> None:
    """The run as the last line of the output."""
    print(json.dumps(record, allow_nan=False), flush=True)


def save(record: dict[str, Any], folder: Path, *, complete: bool) -> Path:
    """A complete run: `latest.json` (indented) and one more line of `runs.jsonl` (every
    complete run so far). Some sections only: `partial.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("latest.json" if complete else "partial.json")
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    if complete:
        with (folder / "runs.jsonl").open("a") as history:
            history.write(json.dumps(record, allow_nan=False) + "\n")
    return path


def _plain(value: float | None) -> float | None:
    """Four significant digits are more than any figure here can claim; NaN (no
    sample) becomes null, which JSON can say."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")
