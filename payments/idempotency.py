"""Idempotency-Key on every POST.

The record of the first response is written in the same database transaction as the
request's effect, so a crash leaves either both or neither: a retry after a crash runs
again from scratch, and a retry after success replays the stored bytes. While the first
request is still running, a transaction-scoped advisory lock on the key makes a repeat
answer 409 at once rather than wait (PostgreSQL; SQLite serialises writers anyway).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from ledger.errors import LedgerError
from payments.auth import principal_of
from payments.errors import ApiError, as_api_error, problem_response
from payments.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEEP_FOR = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255


def run_idempotent(
    request: Request,
    handler: Callable[[], HttpResponse],
    render: Callable[[HttpResponse], HttpResponse],
) -> HttpResponse:
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            400,
            "validation_error",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters",
            param=HEADER,
        )
    principal = principal_of(request)
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        if not _lock(principal.organization_id, principal.livemode, key):
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        record = IdempotencyRecord.objects.filter(
            organization_id=principal.organization_id, livemode=principal.livemode, key=key
        ).first()
        if record is not None:
            if record.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request.",
                    param=HEADER,
                )
            return _replay(record)
        try:
            response = render(handler())
        except (ApiError, LedgerError) as exc:
            # A refusal is a result too: repeating the request gets the same answer.
            response = problem_response(request, as_api_error(exc, request))
        if response.status_code < 500:
            IdempotencyRecord.objects.create(
                organization_id=principal.organization_id,
                livemode=principal.livemode,
                key=key,
                fingerprint=fingerprint,
                status=response.status_code,
                content_type=response["Content-Type"],
                body=bytes(response.content),
            )
        return response


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Forget keys older than KEEP_FOR (the contract keeps them at least 24 hours)."""
    cutoff = (now or timezone.now()) - KEEP_FOR
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(request.body)
    return digest.hexdigest()


def _lock(organization_id: str, livemode: bool, key: str) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"idempotency:{organization_id}:{int(livemode)}:{key}"],
        )
        (locked,) = cursor.fetchone()
    return bool(locked)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.body), status=record.status, content_type=record.content_type
    )
    response[REPLAYED] = "true"
    return response
