from __future__ import annotations

import logging

from celery import current_app
from django.core.cache import cache

log = logging.getLogger(__name__)


def nudge(task: str) -> None:
    """After a commit that left work for a worker: ask for it now rather than at the
    next beat. At most one message a second per task, and a broker that is down costs
    only the wait for the beat's sweep, never the caller's request."""
    try:
        if cache.add(f"openpay:nudged:{task}", 1, timeout=1):
            current_app.send_task(task, expires=30)
    except Exception:  # the broker or the cache is down: the periodic sweep catches up
        log.warning("could not queue %s; the periodic sweep will run it", task)
