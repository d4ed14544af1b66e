"""What a section hands back, and how the runner prints it."""

from __future__ import annotations

import json
import operator
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Goal:
    op: Literal[">=", "<=", "<"]
    bound: float

    def met(self, value: float) -> bool:
        return bool(_COMPARE[self.op](value, self.bound))

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass(frozen=True)
class Figure:
    key: str
    # None when the figure could not be measured (the reason is in `detail`).
    value: float | None
    goal: Goal
    detail: str


@dataclass
class SectionResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    # The throughputs and latencies the figures are ratios of.
    raw: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int | float | str] = field(default_factory=dict)


def print_table(results: list[SectionResult]) -> None:
    rows = [("figure", "value", "goal", "met", "from")]
    for result in results:
        for figure in result.figures:
            value = "n/a" if figure.value is None else f"{figure.value:.3f}"
            met = "n/a" if figure.value is None else _yes(figure.goal.met(figure.value))
            rows.append((figure.key, value, str(figure.goal), met, figure.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]).rstrip())
    for result in results:
        print(f"\n{result.name}: sizes " + ", ".join(f"{k}={v}" for k, v in result.sizes.items()))
        for key, number in result.raw.items():
            print(f"  {key:<40} {number:>14,.3f}")
    sys.stdout.flush()


def print_json(
    results: list[SectionResult], *, mode: str, commit: str, load: tuple[float, float]
) -> None:
    """One line with every figure (top level), the raw numbers and the sizes."""
    line: dict[str, object] = {"mode": mode, "commit": commit, "load_average": list(load)}
    for result in results:
        line.update({figure.key: figure.value for figure in result.figures})
    line["raw"] = {f"{r.name}.{k}": v for r in results for k, v in r.raw.items()}
    line["sizes"] = {f"{r.name}.{k}": v for r in results for k, v in r.sizes.items()}
    print(json.dumps(line), flush=True)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
