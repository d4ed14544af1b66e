from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    """What every section gets from the runner."""

    quick: bool
    database_url: str
    # The interpreter of the separate benchmark virtualenv (.venv-bench), which holds
    # the libraries we compare against; None when it was not given.
    bench_python: str | None
