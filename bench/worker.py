"""The product's Celery worker and beat, as `make run` starts them, for the webhook
section: the worker with one process executing tasks (`--concurrency 1`), beat on a
schedule file of its own, both on the run's database and Redis. Stopped (SIGTERM: the
worker finishes the task in hand) when the block ends."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from bench.processes import Child, child

# One process executing tasks, named apart from any other worker on the machine. No other
# worker shares the broker here: nothing to sync with at start (mingle) or to gossip
# with; neither changes how tasks run.
_ONE = (
    "--concurrency",
    "1",
    "--hostname",
    f"bench-{os.getpid()}@%h",
    "--without-mingle",
    "--without-gossip",
)


@dataclass(frozen=True)
class Celery:
    worker: Child
    beat: Child


@contextmanager
def celery(*, env: dict[str, str]) -> Iterator[Celery]:
    """The worker (yielded once it says `ready`), then beat."""
    python = sys.executable
    with ExitStack() as stack:
        # Not var/celerybeat-schedule: that one is `make run`'s.
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-beat-"))
        schedule = ("--schedule", os.path.join(folder, "celerybeat-schedule"))
        worker = stack.enter_context(
            child(
                "celery worker",
                [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", *_ONE],
                env=env,
                ready=lambda started: " ready." in started.output(),
                ready_within=60,
                stop_within=20,
            )
        )
        beat = stack.enter_context(
            child(
                "celery beat",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel",
                    "WARNING",
                    *schedule,
                ],
                env=env,
            )
        )
        yield Celery(worker, beat)
