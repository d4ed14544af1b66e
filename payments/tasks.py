"""Celery tasks: thin wrappers over payments.services. Each is safe to run twice at
once (rows are claimed with SKIP LOCKED) and safe to re-run after a crash."""

from __future__ import annotations

import logging

from celery import shared_task

from payments import services

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def settle_transfers() -> int:
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
