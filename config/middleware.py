from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.ids import new_id


class RequestIdMiddleware:
    """Gives every request an id, returned in the `Request-Id` header and quoted in
    error bodies and logs, so a client's support ticket points at one log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = new_id("req")  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["Request-Id"] = request.request_id  # type: ignore[attr-defined]
        return response
