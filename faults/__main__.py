"""`python -m faults [--quick] [--seed N]`: the bank test under fire (see faults/harness.py).

Prints a progress line every few seconds (on stderr) and ends with one JSON line on
stdout; exits 1 if any violation was found, 2 if the run could not be set up.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType

from faults.harness import full, quick, run
from faults.nemesis import KINDS
from faults.processes import ROOT


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwind normally, so that every process the harness started is stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short version CI runs")
    parser.add_argument("--seed", type=int, default=1, help="the random seed (default 1)")
    parser.add_argument("--seconds", type=float, help="override the load's duration")
    parser.add_argument(
        "--faults",
        help=f"comma-separated fault kinds to inject (default all: {','.join(KINDS)})",
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=ROOT / "var" / "faults",
        help="where the cluster, logs and state live (default var/faults)",
    )
    args = parser.parse_args(argv)
    plan = (quick if args.quick else full)(args.seed)
    if args.seconds is not None:
        plan = replace(plan, load_seconds=args.seconds)
    if args.faults is not None:
        kinds = tuple(k for k in args.faults.split(",") if k)
        unknown = set(kinds) - set(KINDS)
        if unknown:
            parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        plan = replace(plan, kinds=kinds)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(plan, args.var_dir.resolve())
    except KeyboardInterrupt:
        print("faults: interrupted; everything it started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
