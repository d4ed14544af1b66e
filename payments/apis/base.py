from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from payments.auth import BearerAuthentication, HasScope, Principal, principal_of
from payments.errors import ApiError
from payments.fields import StrictJSONParser
from payments.idempotency import run_idempotent
from payments.ratelimit import rate_limit_check
from payments.schema import OpenPayAutoSchema


class CredentialRateLimit(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        principal = principal_of(request)
        verdict = rate_limit_check(
            bucket=f"credential:{principal.credential_id}",
            limit=principal.rate_limit or settings.API_RATE_LIMIT,
        )
        request._request.rate_limit_verdict = verdict  # type: ignore[attr-defined]
        if not verdict.allowed:
            raise ApiError(429, "rate_limited", "Too many requests.", headers=verdict.headers())
        return True


# One operation of /v1/: Bearer credentials, a scope per method, strict JSON. (A comment,
# not a docstring: the schema generator would copy a docstring into every operation.)
class ApiView(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [CredentialRateLimit]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    # No OPTIONS self-description: the OpenAPI schema is the description.
    metadata_class = None
    schema = OpenPayAutoSchema()
    required_scopes: dict[str, str] = {}

    @property
    def principal(self) -> Principal:
        return principal_of(self.request)


def idempotent(
    method: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Wraps a POST handler in Idempotency-Key handling (see payments.idempotency)."""

    @functools.wraps(method)
    def wrapper(view: ApiView, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        def render(response: HttpResponse) -> HttpResponse:
            finalized = view.finalize_response(request, response, *args, **kwargs)  # type: ignore[arg-type]
            finalized.render()  # type: ignore[attr-defined]
            return finalized

        return run_idempotent(request, lambda: method(view, request, *args, **kwargs), render)

    return wrapper
