from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

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


class PortalLocaleMiddleware(LocaleMiddleware):
    """The browser's language for the portal's pages; English for the API, whose messages
    are part of the contract that clients match on."""

    def process_request(self, request: HttpRequest) -> None:
        if request.path_info.startswith(("/v1/", "/api/")):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.path_info.startswith(("/v1/", "/api/")):
            return response
        return super().process_response(request, response)
