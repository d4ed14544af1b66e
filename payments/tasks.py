"""Celery tasks: thin wrappers over payments.services. Each is safe to run twice at
once (rows are claimed with SKIP LOCKED) and safe to re-run after a crash."""

from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from django.utils import timezone

from payments import delivery, events, idempotency, requestlog, services
from payments.nudge import nudge, nudge_taken

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def settle_transfers() -> int:
    nudge_taken("payments.tasks.settle_transfers")
    run = services.transfers_settle_due()
    if run.batches:
        log.info(
            "settled %d transfers, failed %d, in %d batches", run.settled, run.failed, run.batches
        )
    return run.settled


@shared_task(ignore_result=True)
def expire_holds() -> int:
    expired = services.transfers_expire_holds()
    if expired:
        log.info("voided %d transfers whose hold expired", expired)
    return expired


@shared_task(ignore_result=True)
def flush_request_log() -> int:
    return requestlog.request_log_flush()


@shared_task(ignore_result=True)
def purge_old_records() -> None:
    """Request logs after 30 days, idempotency keys after 24 hours, events after 90."""
    logs = requestlog.request_log_purge()
    keys = idempotency.idempotency_records_purge()
    old_events = events.events_purge()
    if logs or keys or old_events:
        log.info(
            "purged %d request log rows, %d idempotency keys, %d events",
            logs,
            keys,
            old_events,
        )


# How long one deliver_webhooks run keeps claiming batches. A backlog is then handed to
# a new run queued behind whatever waits (settlement, the request log's flush), so the
# worker's other tasks are never held up for long.
DELIVERY_RUN_SECONDS = 2.0


@shared_task(ignore_result=True)
def deliver_webhooks() -> int:
    """Send due webhook deliveries until none is due, or for DELIVERY_RUN_SECONDS."""
    nudge_taken(DELIVER_WEBHOOKS)
    deadline = time.monotonic() + DELIVERY_RUN_SECONDS
    sent = 0
    while tried := delivery.deliveries_run():
        sent += tried
        if time.monotonic() > deadline:
            nudge(DELIVER_WEBHOOKS)
            break
    return sent


DELIVER_WEBHOOKS = "payments.tasks.deliver_webhooks"


# How far back each run of report_api_failures looks, so that a run lost to a dead
# worker, a broker outage or a database restart is caught up by a later one.
API_FAILURES_LOOKBACK_MINUTES = 10


@shared_task(ignore_result=True)
def report_api_failures() -> int:
    """The minutes that ended at least 10 s ago (so their request log has been flushed),
    the last ten of them: what no earlier run reported is reported now."""
    latest = timezone.now() - dt.timedelta(seconds=70)
    return sum(
        len(events.api_failures_report(minute=latest - dt.timedelta(minutes=back)))
        for back in range(API_FAILURES_LOOKBACK_MINUTES)
    )
