"""The product's routes plus the trivial view the API section measures as its ceiling:
DRF, no authentication, no throttle, no database, `{"ok": true}`.

It is served twice: at `/bench/ok`, where no /v1/ work happens (the ceiling), and at
`/v1/bench/ok`, where payments.middleware.ApiMiddleware counts it against the per-IP
rate limit as it does every /v1/ request (what that costs)."""

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product


class Ok(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


# Before the product's: /v1/ ends in a catch-all that answers 404 for any other path.
urlpatterns = [
    path("bench/ok", Ok.as_view()),
    path("v1/bench/ok", Ok.as_view()),
    *product,
]
