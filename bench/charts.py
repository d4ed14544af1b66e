"""Charts of a run, drawn with matplotlib (Agg: no display needed), and its figures as
Markdown tables for docs/benchmarks.md.

    python -m bench.charts                 # redraw docs/img/bench/*.png from var/bench/latest.json
    python -m bench.charts --markdown      # and print the tables
    make bench-charts                      # the same as the first

Four PNGs: `overview.png`, every figure as how far it is from its goal on one scale,
and one per section (`ledger.png`, `api.png`, `webhooks.png`) with each figure's value
against its goal on the figure's own scale.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.database import ROOT
from bench.report import GOALS, SECTION_OF, Goal, met

LATEST = ROOT / "var" / "bench" / "latest.json"
OUT = ROOT / "docs" / "img" / "bench"
MET, MISSED, UNKNOWN, GOAL_LINE = "#2e7d32", "#c62828", "#9e9e9e", "#37474f"
SECTION_TITLES = {
    "ledger": "Ledger",
    "api": "Public API over HTTP",
    "webhooks": "Webhook delivery",
}


def draw(run: dict[str, Any], out: Path = OUT) -> list[Path]:
    """Write the four charts of `run` (a record from bench.report.run_record) to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = [_overview(run, out / "overview.png")]
    for section in SECTION_TITLES:
        drawn.append(_section(run, section, out / f"{section}.png"))
    return drawn


def markdown(run: dict[str, Any]) -> str:
    """The run's figures as one Markdown table per section, with goal and met/missed."""
    lines = [f"Run: {caption(run)}.", ""]
    for section, title in SECTION_TITLES.items():
        seconds = run.get("sections", {}).get(section, {}).get("seconds")
        lines += [
            f"**{title}**" + (f" ({seconds:.0f} s)" if seconds is not None else ""),
            "",
            "| figure | value | goal | met | from |",
            "|---|---|---|---|---|",
        ]
        for key in _keys(section):
            value, goal = _value(run, key), _goal(run, key)
            shown = "n/a" if value is None else _number(value)
            verdict = met(value, goal).replace("NO", "**missed**").replace("yes", "met")
            goal_text = _pretty(goal)
            detail = run.get("details", {}).get(key, "")
            lines.append(f"| `{key}` | {shown} | {goal_text} | {verdict} | {detail} |")
        lines.append("")
    return "\n".join(lines)


def caption(run: dict[str, Any]) -> str:
    """Mode, date, commit, load average and machine in one line."""
    load = run.get("load_average", {})
    start, end = load.get("start", [math.nan])[0], load.get("end", [math.nan])[0]
    about = run.get("machine", {})
    postgres = about.get("postgresql", {})
    version = str(postgres.get("server_version", "?")).split()[0]
    return (
        f"{run.get('mode', '?')} mode, {run.get('started_at', '?')}, "
        f"commit {run.get('commit', '?')}, {run.get('seconds', '?')} s; "
        f"load average {start:.1f} at the start, {end:.1f} at the end; "
        f"{about.get('cores', '?')} cores, PostgreSQL {version} "
        f"(fsync {postgres.get('fsync', '?')})"
    )


# Charts ---------------------------------------------------------------------------------


def _overview(run: dict[str, Any], path: Path) -> Path:
    """One bar per figure: its distance from the goal on a log scale, value ÷ goal for
    a figure that must be at least its goal, goal ÷ value for one that must stay under
    it; right of the line (1) is met."""
    keys = list(GOALS)
    figure, axes = plt.subplots(figsize=(10, 6.4), layout="constrained")
    scores = [_score(_value(run, key), _goal(run, key)) for key in keys]
    finite = [s for s in scores if s is not None and 0 < s < math.inf]
    low = min([*finite, 0.5]) / 2
    high = max([*finite, 2.0]) * 2
    for row, (key, score) in enumerate(zip(keys, scores, strict=True)):
        value, goal = _value(run, key), _goal(run, key)
        if score is None:
            axes.barh(row, high - low, left=low, color="none", edgecolor=UNKNOWN, hatch="//")
            label = "not measured"
        else:
            shown = min(max(score, low), high)
            color = MET if goal.met(value) else MISSED  # type: ignore[arg-type]
            axes.barh(row, shown - low, left=low, color=color)
            label = f"{_number(value)}  (goal {_pretty(goal)})"  # type: ignore[arg-type]
        axes.text(
            low * 1.08,
            row,
            label,
            va="center",
            ha="left",
            fontsize=9,
            color="black",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
        )
    axes.axvline(1, color=GOAL_LINE, linestyle="--", linewidth=1.2)
    axes.text(1, -0.75, " goal", color=GOAL_LINE, fontsize=9, va="center")
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    axes.set_yticks(range(len(keys)), keys, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlabel("value ÷ goal (at least) or goal ÷ value (at most): right of the line is met")
    figure.suptitle("make bench: every figure against its goal", fontsize=13)
    axes.set_title(textwrap.fill(caption(run), 120), fontsize=8, color="#555555")
    return _save(figure, path)


def _section(run: dict[str, Any], section: str, path: Path) -> Path:
    """One panel per figure of the section: the value as a bar, the goal as a dashed
    line, on the figure's own linear scale; above it the value, the verdict and what the
    figure was made of."""
    keys = _keys(section)
    figure, panels = plt.subplots(
        len(keys), 1, figsize=(10, 1.45 * len(keys) + 0.9), layout="constrained", squeeze=False
    )
    for axes, key in zip(panels[:, 0], keys, strict=True):
        _panel(axes, key, _value(run, key), _goal(run, key), run.get("details", {}).get(key, ""))
    figure.suptitle(f"{SECTION_TITLES[section]}: figures against their goals", fontsize=13)
    figure.supxlabel(textwrap.fill(caption(run), 150), fontsize=7, color="#555555")
    return _save(figure, path)


def _panel(axes: Axes, key: str, value: float | None, goal: Goal, detail: str) -> None:
    shown = value if value is not None and math.isfinite(value) else 0.0
    top = max(goal.bound, shown) * 1.12
    if value is None:
        axes.barh(0, top, color="none", edgecolor=UNKNOWN, hatch="//", height=0.5)
        verdict, color = "not measured", UNKNOWN
    else:
        color = MET if goal.met(value) else MISSED
        axes.barh(0, min(value, top), color=color, height=0.5)
        verdict = f"{_number(value)}, {'met' if goal.met(value) else 'missed'}"
        verdict += f" (goal {_pretty(goal)})"
    axes.axvline(goal.bound, color=GOAL_LINE, linestyle="--", linewidth=1.2)
    axes.text(goal.bound, 0.42, " goal", color=GOAL_LINE, fontsize=8, va="center")
    axes.set_xlim(0, top)
    axes.set_ylim(-0.5, 0.55)
    axes.set_yticks([])
    axes.set_title(
        f"{key} = {verdict}\n" + textwrap.shorten(detail, 150, placeholder=" …"),
        fontsize=8.5,
        loc="left",
        color=color,
    )
    axes.tick_params(axis="x", labelsize=8)


def _save(figure: Any, path: Path) -> Path:
    # No creation time or library version in the file: redrawing the same run gives
    # the same bytes.
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path


# The run's numbers ---------------------------------------------------------------------


def _keys(section: str) -> list[str]:
    return [key for key in GOALS if SECTION_OF[key] == section]


def _value(run: dict[str, Any], key: str) -> float | None:
    value = run.get(key)
    return None if value is None else float(value)


def _goal(run: dict[str, Any], key: str) -> Goal:
    """The goal the run was measured against (kept in its JSON), else today's."""
    text = run.get("goals", {}).get(key)
    return Goal.parse(text) if text else GOALS[key]


def _score(value: float | None, goal: Goal) -> float | None:
    if value is None:
        return None
    if goal.op == ">=":
        return value / goal.bound
    return goal.bound / value if value > 0 else math.inf


def _pretty(goal: Goal) -> str:
    return str(goal).replace(">=", "≥").replace("<=", "≤")


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if abs(value) >= 0.1 else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__)
    parser.add_argument("--json", type=Path, default=LATEST, help=f"a run (default {LATEST})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    parser.add_argument("--markdown", action="store_true", help="also print the tables")
    args = parser.parse_args()
    if not args.json.exists():
        raise SystemExit(f"bench.charts: no {args.json}: run `make bench` (or QUICK=1) first")
    run = json.loads(args.json.read_text())
    for path in draw(run, args.out):
        print(path)
    if args.markdown:
        print()
        print(markdown(run))


if __name__ == "__main__":
    main()
