"""The per-application request log, written off the request path.

With Redis, a request appends one JSON line to a Redis list (one round trip to a
memory store) and a periodic task moves the lines to the database in batches. Without
Redis (a laptop) the row is inserted directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from oauth.models import Organization
from payments.models import RequestLog

KEEP_FOR = dt.timedelta(days=30)
log = logging.getLogger(__name__)
BATCH = 1000


def request_log_record(entry: dict[str, Any]) -> None:
    """Never raises: the request it describes has already happened (and perhaps moved
    money), so a failure to log it must not turn its answer into an error."""
    client = _redis()
    try:
        if client is not None:
            client.rpush(_queue(), json.dumps(entry))
            return
    except Exception:  # Redis unreachable: write the line directly instead
        log.warning("request log buffer unreachable; writing %s directly", entry.get("id"))
    try:
        RequestLog.objects.create(**_row(entry))
    except Exception:
        log.exception("could not record request %s in the request log", entry.get("id"))


# One flusher at a time: it holds this lock, renewed at every batch, which expires by
# itself if its holder dies.
FLUSH_LOCK_SECONDS = 60
FLUSH_BUDGET_SECONDS = 20.0


def request_log_flush(*, batch: int = BATCH) -> int:
    """Move buffered lines into the database; returns how many.

    Lines are read, written, and only then removed from the buffer: a flush that dies, or
    whose write fails (the database restarting), leaves them for the next flush instead
    of losing them. A line written twice that way is stored once (its request id is the
    primary key)."""
    from redis.exceptions import LockError

    client = _redis()
    if client is None:
        return 0
    lock = client.lock(f"{_queue()}:flushing", timeout=FLUSH_LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        return 0  # another flush is at work
    moved = 0
    deadline = time.monotonic() + FLUSH_BUDGET_SECONDS
    try:
        while time.monotonic() < deadline and (lines := client.lrange(_queue(), 0, batch - 1)):
            rows = [RequestLog(**_row(json.loads(line))) for line in lines]
            # An organization deleted since its request was logged takes its log with it.
            known = set(
                Organization.objects.filter(
                    id__in={row.organization_id for row in rows}
                ).values_list("id", flat=True)
            )
            RequestLog.objects.bulk_create(
                [row for row in rows if row.organization_id in known], ignore_conflicts=True
            )
            # Still ours (and renewed): no other flush read these lines, so they are
            # exactly the first len(lines) of the buffer (new lines go to its end).
            lock.reacquire()
            client.ltrim(_queue(), len(lines), -1)
            moved += len(lines)
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: nothing to release
            lock.release()
    return moved


def request_log_purge(*, now: dt.datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - KEEP_FOR
    deleted, _ = RequestLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _queue() -> str:
    # One queue per database, so that two deployments (or test runs) sharing a Redis
    # never file each other's lines.
    return f"openpay:requestlog:{connection.settings_dict['NAME']}"


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "created_at": dt.datetime.fromisoformat(entry["created_at"])}


@cache
def _redis() -> Any:
    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)
