"""The per-application request log, written off the request path.

With Redis, a request appends one JSON line to a Redis list (one round trip to a
memory store) and a periodic task moves the lines to the database in batches. Without
Redis (a laptop) the row is inserted directly.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
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


def request_log_flush(*, batch: int = BATCH) -> int:
    """Move buffered lines into the database; returns how many."""
    client = _redis()
    if client is None:
        return 0
    moved = 0
    while lines := client.lpop(_queue(), batch):
        rows = [RequestLog(**_row(json.loads(line))) for line in lines]
        # An organization deleted since its request was logged takes its log with it.
        known = set(
            Organization.objects.filter(id__in={row.organization_id for row in rows}).values_list(
                "id", flat=True
            )
        )
        RequestLog.objects.bulk_create(
            [row for row in rows if row.organization_id in known], ignore_conflicts=True
        )
        moved += len(lines)
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
