"""Many threads doing work for a fixed time, each on its own Django connection."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, connections

# One operation (a transfer), given the thread's own random generator.
Work = Callable[[random.Random], None]


@dataclass(frozen=True)
class Tally:
    done: int
    errors: Counter[str]


@dataclass(frozen=True)
class Run:
    seconds: float
    tallies: list[Tally]

    def rate(self) -> float:
        """Operations per second, all threads together."""
        return sum(t.done for t in self.tallies) / self.seconds

    def errors(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for tally in self.tallies:
            total.update(tally.errors)
        return total


def run_for(seconds: float, threads: int, work: Work) -> Run:
    """Start `threads` threads at once and let each repeat `work` until `seconds` have
    passed. A failed call is counted under its error, not retried."""
    tallies: list[Tally | None] = [None] * threads
    clock: dict[str, float] = {}

    def start_clock() -> None:
        clock["start"] = time.monotonic()

    # Every thread connects before the clock starts: connecting is not measured.
    start_line = threading.Barrier(threads, action=start_clock)

    def worker(index: int) -> None:
        rng = random.Random(index)
        done, errors = 0, Counter[str]()
        try:
            connection.ensure_connection()
        except Exception:
            start_line.abort()
            raise
        try:
            start_line.wait()
            deadline = clock["start"] + seconds
            while time.monotonic() < deadline:
                try:
                    work(rng)
                    done += 1
                except Exception as error:  # counted and reported: a benchmark goes on
                    errors[_describe(error)] += 1
            tallies[index] = Tally(done, errors)
        finally:
            connections.close_all()

    started = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    done = [tally for tally in tallies if tally is not None]
    if len(done) != threads:
        raise RuntimeError("a benchmark thread could not connect to the database")
    return Run(time.monotonic() - clock["start"], done)


def _describe(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line[:70]}"
