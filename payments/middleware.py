"""Around every /v1/ request: the per-IP rate limit (before anything else, so that
unauthenticated floods are limited too), the request log, and problem+json for
anything that escaped the views."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from payments.auth import Principal
from payments.errors import ApiError, as_api_error, problem_response
from payments.ratelimit import rate_limit_check
from payments.requestlog import request_log_record

API_PREFIX = "/v1/"


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        verdict = rate_limit_check(
            bucket=f"ip:{request.META.get('REMOTE_ADDR', '')}", limit=settings.API_IP_RATE_LIMIT
        )
        if not verdict.allowed:
            response = problem_response(
                request,
                ApiError(
                    429,
                    "rate_limited",
                    "Too many requests from this address.",
                    headers=verdict.headers(),
                ),
            )
        elif "HTTP_TRANSFER_ENCODING" in request.META:
            # Django reads a body only as far as Content-Length says, so a chunked body
            # would pass for an empty one: `{"amount": 500}` sent chunked to /settle
            # would settle the whole transfer. Refused before anything reads it.
            response = problem_response(
                request,
                ApiError(
                    411,
                    "length_required",
                    "Send the body with a Content-Length; chunked request bodies are refused.",
                ),
            )
        else:
            response = self.get_response(request)
        credential_verdict = getattr(request, "rate_limit_verdict", None)
        for name, value in (credential_verdict or verdict).headers().items():
            response.setdefault(name, value)
        # Answers carry balances and, once, signing secrets: no cache may keep them.
        response.setdefault("Cache-Control", "no-store")
        self._log(request, response, time.perf_counter() - started)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        return problem_response(request, as_api_error(exception, request))

    def _log(self, request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        principal = getattr(request, "user", None)
        if not isinstance(principal, Principal):
            return  # no organization to show it to
        request_log_record(
            {
                "id": getattr(request, "request_id", ""),
                "organization_id": principal.organization_id,
                "livemode": principal.livemode,
                "application_id": principal.application_id or "",
                "credential_id": principal.credential_id,
                "method": request.method or "",
                "path": request.path[:500],
                "status": response.status_code,
                "error_code": getattr(request, "api_error_code", ""),
                "latency_ms": round(seconds * 1000, 2),
                "created_at": timezone.now().isoformat(),
            }
        )
