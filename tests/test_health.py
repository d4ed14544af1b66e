from __future__ import annotations

import pytest
from django.test import Client, override_settings


def test_healthz_answers_without_touching_services(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Request-Id"].startswith("req_")


@pytest.mark.django_db
def test_readyz_checks_database_and_broker(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_readyz_is_503_and_names_a_broker_that_is_down(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_reaches_a_real_redis_broker(client: Client) -> None:
    from django.conf import settings

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert client.get("/readyz").json()["checks"]["broker"] == "ok"


def test_health_endpoints_refuse_writes(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
