"""OpenAPI pieces shared by the operations: the problem+json error body, list
envelopes, and the security schemes."""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from oauth.models import Scope
from payments.errors import PROBLEM_JSON


class FieldErrorOut(serializers.Serializer[Any]):
    param = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


# Built inline: a declared `errors` field would shadow Serializer.errors for the type checker.
ProblemOut = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.URLField(help_text="Link to the code's entry in the error docs"),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Stable: switch on this"),
        "param": serializers.CharField(required=False, help_text="The field at fault"),
        "errors": FieldErrorOut(many=True, required=False),
        "request_id": serializers.CharField(),
    },
)


def _problem(description: str, status: int, code: str, detail: str) -> OpenApiResponse:
    return OpenApiResponse(
        ProblemOut,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={
                    "type": f"https://docs.example/errors#{code}",
                    "title": description,
                    "status": status,
                    "detail": detail,
                    "code": code,
                    "request_id": "req_01jf3k2v8y6q4m7c9d0e5f1g2h",
                },
                response_only=True,
                status_codes=[str(status)],
                media_type=PROBLEM_JSON,
            )
        ],
    )


ERRORS: dict[Any, OpenApiResponse] = {
    (400, PROBLEM_JSON): _problem(
        "Bad request", 400, "validation_error", "amount: must be a positive integer"
    ),
    (401, PROBLEM_JSON): _problem(
        "Authentication required", 401, "invalid_api_key", "The API key is not valid."
    ),
    (402, PROBLEM_JSON): _problem(
        "Payment required", 402, "insufficient_funds", "the source account has too little available"
    ),
    (403, PROBLEM_JSON): _problem(
        "Forbidden", 403, "insufficient_scope", "This credential lacks the `transfers:write` scope."
    ),
    (404, PROBLEM_JSON): _problem("Not found", 404, "not_found", "No such account."),
    (413, PROBLEM_JSON): _problem(
        "Request too large", 413, "request_too_large", "The request body is too large."
    ),
    (415, PROBLEM_JSON): _problem(
        "Unsupported media type",
        415,
        "unsupported_media_type",
        "Send the body as application/json.",
    ),
    (409, PROBLEM_JSON): _problem(
        "Conflict", 409, "transfer_not_pending", "the transfer is settled"
    ),
    (422, PROBLEM_JSON): _problem(
        "Unprocessable request",
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request.",
    ),
    (429, PROBLEM_JSON): _problem("Too many requests", 429, "rate_limited", "Too many requests."),
    (500, PROBLEM_JSON): _problem(
        "Internal error", 500, "internal_error", "Something went wrong on our side."
    ),
}


@cache
def list_of(item: type[serializers.Serializer[Any]]) -> Any:
    return inline_serializer(
        name=f"{item.__name__.removesuffix('Out')}List",
        fields={
            "object": serializers.CharField(default="list"),
            "data": item(many=True),
            "has_more": serializers.BooleanField(),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[misc,no-untyped-call]
    """Two ways to be the `Authorization: Bearer` credential: an API key, or an OAuth 2.0
    access token. An operation needs its scope either way."""

    target_class = "payments.auth.BearerAuthentication"
    name = ["apiKey", "oauth2"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        scope = getattr(auto_schema.view, "required_scopes", {}).get(auto_schema.method)
        scopes = [scope] if scope else []
        return [{"apiKey": scopes}, {"oauth2": scopes}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        scopes = {scope.value: scope.label for scope in Scope}
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A secret key `sk_test_…`/`sk_live_…` (every scope) or a "
                "restricted key `rk_test_…`/`rk_live_…` (its scopes only).",
            },
            {
                "type": "oauth2",
                "description": "An access token a user granted a third-party application, "
                "limited to the scopes and accounts they chose.",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": "/oauth/authorize/",
                        "tokenUrl": "/oauth/token/",
                        "refreshUrl": "/oauth/token/",
                        "scopes": scopes,
                    },
                    "clientCredentials": {"tokenUrl": "/oauth/token/", "scopes": scopes},
                },
            },
        ]
