"""Every API request of an organization lands in its request log, off the request path
(through Redis when there is one), and is kept 30 days."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.test import Client
from django.utils import timezone

from oauth import services as identity
from payments.idempotency import idempotency_records_purge
from payments.models import IdempotencyRecord, RequestLog
from payments.requestlog import request_log_flush, request_log_purge
from tests.factories import log_request, make_organization
from tests.live import celery_worker

pytestmark = pytest.mark.django_db


def test_requests_are_logged_with_status_error_code_and_latency(client: Client) -> None:
    organization = make_organization()
    secret = identity.api_key_create(organization=organization, livemode=False).secret
    auth = {"Authorization": f"Bearer {secret}"}
    ok = client.get("/v1/accounts", headers=auth)
    missing = client.get("/v1/accounts/acct_nope", headers=auth)
    request_log_flush()

    logged = {row.id: row for row in RequestLog.objects.filter(organization=organization)}
    assert set(logged) == {ok["Request-Id"], missing["Request-Id"]}
    first, second = logged[ok["Request-Id"]], logged[missing["Request-Id"]]
    assert (first.method, first.path, first.status, first.error_code) == (
        "GET",
        "/v1/accounts",
        200,
        "",
    )
    assert (second.status, second.error_code) == (404, "not_found")
    assert first.latency_ms > 0
    assert first.credential_id.startswith("key_")
    assert first.livemode is False


def test_requests_without_a_valid_credential_belong_to_no_log(client: Client) -> None:
    client.get("/v1/accounts", headers={"Authorization": "Bearer sk_test_wrong"})
    request_log_flush()
    assert not RequestLog.objects.exists()


def test_logs_older_than_30_days_and_keys_older_than_a_day_are_purged() -> None:
    organization = make_organization()
    now = timezone.now()
    _, kept = (log_request(organization, at=now - dt.timedelta(days=days)) for days in (31, 29))
    old = IdempotencyRecord.objects.create(
        organization=organization,
        livemode=False,
        key="old",
        fingerprint="f",
        status=201,
        content_type="application/json",
        body=b"{}",
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(hours=25))
    IdempotencyRecord.objects.create(
        organization=organization,
        livemode=False,
        key="new",
        fingerprint="f",
        status=201,
        content_type="application/json",
        body=b"{}",
    )
    assert request_log_purge(now=now) == 1
    assert idempotency_records_purge(now=now) == 1
    assert list(RequestLog.objects.values_list("id", flat=True)) == [kept]
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_started_plainly_flushes_from_the_request_logs_own_queue() -> None:
    """The flush is routed to the `requestlog` queue (settlement and delivery backlogs on
    the default queue cannot hold it up); a worker started with no -Q consumes it."""
    from payments.tasks import flush_request_log

    route = flush_request_log.app.amqp.router.route({}, flush_request_log.name)
    assert route["queue"].name == "requestlog"
    organization = make_organization()
    request_id = log_request(organization, flush=False)
    with celery_worker():
        deadline = time.monotonic() + 45
        while not RequestLog.objects.filter(id=request_id).exists():
            assert time.monotonic() < deadline, "no worker took the flush from its queue"
            flush_request_log.delay()
            time.sleep(1)
