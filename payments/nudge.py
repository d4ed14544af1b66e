from __future__ import annotations

import logging

from celery import current_app
from django.core.cache import cache

log = logging.getLogger(__name__)


def _key(task: str) -> str:
    return f"openpay:nudged:{task}"


def nudge(task: str) -> None:
    """After a commit that left work for a worker: ask for it now rather than at the
    next beat. One message waits at a time per task (for a second at most, should it be
    lost), and a broker that is down costs only the wait for the beat's sweep, never
    the caller's request."""
    try:
        if cache.add(_key(task), 1, timeout=1):
            current_app.send_task(task, expires=30)
    except Exception:  # the broker or the cache is down: the periodic sweep catches up
        log.warning("could not queue %s; the periodic sweep will run it", task)


def nudge_taken(task: str) -> None:
    """Called by the task as it starts: a commit from now on may come after the task's
    last look, so its nudge must queue another run rather than be swallowed."""
    try:
        cache.delete(_key(task))
    except Exception:  # the cache is down: nudges wait out their second instead
        log.warning("could not clear the nudge for %s", task)
