"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_SECONDS = 2.0


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; checks nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the broker are reachable; 503 names whatever is down."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    down = sorted(name for name, problem in checks.items() if problem)
    body: dict[str, object] = {
        "status": "unavailable" if down else "ok",
        "checks": {name: problem or "ok" for name, problem in checks.items()},
    }
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # Any failure means not ready; the reason goes to the body.
        return f"unreachable: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])  # type: ignore[arg-type]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"unreachable: {type(exc).__name__}"
        return None
    try:
        with current_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # Kombu raises transport-specific errors.
        return f"unreachable: {type(exc).__name__}"
    return None
