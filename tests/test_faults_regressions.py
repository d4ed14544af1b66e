"""Bugs the bank test under fire (`make faults`) found, each pinned by a test that fails
on the code before its fix.

1. The request log's flush popped lines from Redis before writing them: a flush that
   died or met a restarting database lost them (half of the requests of a ten-minute
   run with eight PostgreSQL restarts were missing from the log).
2. api_request.failed: a minute was marked as reported (in the cache) before its report
   was written, its event and deliveries were written in separate transactions, and a
   run lost (a dead worker, a broker outage) was never caught up; so under faults whole
   minutes of failures were never reported, and an event could commit without the
   delivery that would send it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone

from oauth.models import Organization
from payments import tasks, webhooks
from payments.events import api_failures_report
from payments.models import Event, RequestLog, WebhookDelivery
from payments.requestlog import request_log_flush, request_log_record
from tests.factories import make_organization

_ids = itertools.count()


@pytest.fixture
def organization() -> Organization:
    return make_organization("Faulty Ltd")


def failed_request(organization: Organization, at: dt.datetime, code: str = "not_found") -> str:
    """One failed API request, recorded the way the API records it."""
    request_id = f"req_faults{next(_ids):016d}"
    request_log_record(
        {
            "id": request_id,
            "organization_id": organization.id,
            "livemode": False,
            "application_id": "",
            "credential_id": "key_x",
            "method": "POST",
            "path": "/v1/transfers",
            "status": 404,
            "error_code": code,
            "latency_ms": 3.0,
            "created_at": at.isoformat(),
        }
    )
    return request_id


@pytest.fixture
def refusing() -> Iterator[Callable[[str], None]]:
    """`refuse(table)`: makes PostgreSQL itself refuse every insert into `table` (a
    trigger that raises), as a database going away mid-write would; undone at the end."""
    installed: list[str] = []

    def refuse(table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION faults_refuse() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER faults_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION faults_refuse()"
            )
        installed.append(table)

    yield refuse
    with connection.cursor() as cursor:
        for table in installed:
            cursor.execute(f"DROP TRIGGER IF EXISTS faults_refuse ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS faults_refuse()")


def allow(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS faults_refuse ON {table}")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_flush_that_cannot_write_loses_no_line_of_the_request_log(
    organization: Organization, refusing: Callable[[str], None]
) -> None:
    request_log_flush()  # what earlier tests left in the buffer
    logged = {failed_request(organization, timezone.now()) for _ in range(3)}
    refusing("payments_requestlog")
    with pytest.raises(DatabaseError):
        request_log_flush()
    allow("payments_requestlog")

    assert request_log_flush() == 3, "the lines waited in the buffer for the next flush"
    assert (
        set(RequestLog.objects.filter(organization=organization).values_list("id", flat=True))
        == logged
    )
    assert request_log_flush() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_report_that_cannot_write_its_deliveries_writes_nothing_and_is_retried(
    organization: Organization, refusing: Callable[[str], None]
) -> None:
    webhooks.webhook_endpoint_create(
        organization_id=organization.id,
        livemode=False,
        url="https://hooks.example.com/openpay",
        enabled_events=["*"],
    )
    minute = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=3)
    _in_the_log(organization, minute)
    refusing("payments_webhookdelivery")
    with pytest.raises(DatabaseError):
        api_failures_report(minute=minute)
    assert not Event.objects.exists(), "no event without the delivery that sends it"
    allow("payments_webhookdelivery")

    [event] = api_failures_report(minute=minute)
    assert event.data["object"]["count"] == 2
    assert WebhookDelivery.objects.filter(event=event).count() == 1


@pytest.mark.django_db
def test_a_minute_no_run_reported_is_caught_up_by_the_next_run(
    organization: Organization,
) -> None:
    # The runs for this minute were lost (the worker was down, the broker restarted).
    minute = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=4)
    _in_the_log(organization, minute)

    assert tasks.report_api_failures() == 1
    [event] = Event.objects.filter(type="api_request.failed")
    assert event.data["object"]["minute"] == minute.isoformat().replace("+00:00", "Z")
    assert tasks.report_api_failures() == 0, "and only once"


@pytest.mark.django_db
def test_a_minute_is_reported_once_even_when_the_cache_is_lost(
    organization: Organization,
) -> None:
    minute = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    _in_the_log(organization, minute)
    assert len(api_failures_report(minute=minute)) == 1
    cache.clear()  # Redis restarted, keeping nothing
    assert api_failures_report(minute=minute) == []
    assert Event.objects.filter(type="api_request.failed").count() == 1


def _in_the_log(organization: Organization, minute: dt.datetime) -> None:
    for second in (5, 40):
        failed_request(organization, minute + dt.timedelta(seconds=second))
    request_log_flush()
