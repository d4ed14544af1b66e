"""OpenAPI pieces shared by the operations: the problem+json error body, list
envelopes, the security schemes, the headers every operation shares, request bodies
that refuse unknown fields, and the links between operations (what a response's ids
lead to), which clients and the stateful fuzzer (`make fuzz`) follow."""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    inline_serializer,
)
from rest_framework import serializers

from oauth.models import Scope
from payments.errors import PROBLEM_JSON
from payments.fields import StrictCharField


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
    (411, PROBLEM_JSON): _problem(
        "Length required",
        411,
        "length_required",
        "Send the body with a Content-Length; chunked request bodies are refused.",
    ),
    (413, PROBLEM_JSON): _problem(
        "Request too large", 413, "request_too_large", "The request body is too large."
    ),
    (414, PROBLEM_JSON): _problem(
        "Request-URI Too Long",
        414,
        "request_line_too_long",
        "The request line is over 4,094 bytes; send long data in the body.",
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


# What every operation shares ------------------------------------------------------------

REQUEST_ID_PATTERN = "^req_[0-9a-z]{26}$"

RESPONSE_HEADERS = [
    OpenApiParameter(
        "Request-Id",
        {"type": "string", "pattern": REQUEST_ID_PATTERN},
        OpenApiParameter.HEADER,
        required=True,
        description="This request's id: quote it to support.",
        response=True,
    ),
    *(
        OpenApiParameter(
            name,
            {"type": "string", "pattern": "^[0-9]+$"},
            OpenApiParameter.HEADER,
            required=True,
            description=description,
            response=True,
        )
        for name, description in (
            ("RateLimit-Limit", "Requests this credential may make in the current window."),
            ("RateLimit-Remaining", "Requests left in the current window."),
            ("RateLimit-Reset", "Seconds until the window ends."),
        )
    ),
    OpenApiParameter(
        "Retry-After",
        {"type": "string", "pattern": "^[0-9]+$"},
        OpenApiParameter.HEADER,
        description="Seconds to wait before trying again.",
        response=[409, 429],
    ),
]

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # What payments.idempotency accepts: 1 to 255 printable characters (a header's value
    # arrives as Latin-1).
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x20-\\x7e\\xa1-\\xac\\xae-\\xff]+$",
    },
    OpenApiParameter.HEADER,
    description="Makes a retry safe: the same key with the same request replays the first "
    "response (with `Idempotent-Replayed: true`) instead of acting twice. Kept 24 hours.",
)

PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        OpenApiParameter.QUERY,
        description="Items per page, 1 to 100.",
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "maxLength": 200},
        OpenApiParameter.QUERY,
        description="The `next_cursor` of the previous page.",
    ),
]


# Links: where the ids in a response lead. Keyed by operationId, then response status.


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


_ID = "$response.body#/id"  # the id of the object the response shows


def _links(target: str, *names: str, **parameters: str) -> dict[str, Any]:
    """Links named `names` from a table of the ones each object leads to."""
    table = {"account": _ACCOUNT_LINKS, "transfer": _TRANSFER_LINKS, "endpoint": _ENDPOINT_LINKS}
    chosen = {name: table[target][name] for name in names}
    if parameters:  # the id is somewhere else in the body
        chosen = {
            name: _link(link["operationId"], **{k: parameters["at"] for k in link["parameters"]})
            for name, link in chosen.items()
        }
    return chosen


_ACCOUNT_LINKS = {
    "GetAccount": _link("accounts_retrieve", account_id=_ID),
    "GetBalance": _link("accounts_balance", account_id=_ID),
    "ListTransactions": _link("accounts_transactions", account_id=_ID),
    "FundAccount": _link("test_helpers_fund_account", account_id=_ID),
}
_TRANSFER_LINKS = {
    "GetTransfer": _link("transfers_retrieve", transfer_id=_ID),
    "SettleTransfer": _link("transfers_settle", transfer_id=_ID),
    "VoidTransfer": _link("transfers_void", transfer_id=_ID),
    "ReverseTransfer": _link("transfers_reverse", transfer_id=_ID),
    "FailTransfer": _link("test_helpers_fail_transfer", transfer_id=_ID),
    "GetSourceBalance": _link("accounts_balance", account_id="$response.body#/source_account"),
    "ListSourceTransactions": _link(
        "accounts_transactions", account_id="$response.body#/source_account"
    ),
    "GetDestinationBalance": _link(
        "accounts_balance", account_id="$response.body#/destination_account"
    ),
}
_ENDPOINT_LINKS = {
    "GetWebhookEndpoint": _link("webhook_endpoints_retrieve", endpoint_id=_ID),
    "UpdateWebhookEndpoint": _link("webhook_endpoints_update", endpoint_id=_ID),
    "DeleteWebhookEndpoint": _link("webhook_endpoints_delete", endpoint_id=_ID),
    "RotateSecret": _link("webhook_endpoints_rotate_secret", endpoint_id=_ID),
    "ListDeliveries": _link("webhook_endpoints_deliveries", endpoint_id=_ID),
    "Replay": _link("webhook_endpoints_replay", endpoint_id=_ID),
}
_FIRST_EVENT = "$response.body#/data/0/id"

# Only the next steps that make sense: a pending transfer is settled, voided or failed
# (reversing it is 409, and a settled one is what is reversed), a deleted endpoint is read
# once more (it must be 404), and so on.
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "accounts_create": {"201": _ACCOUNT_LINKS},
    "test_helpers_fund_account": {"200": _links("account", "GetBalance", "ListTransactions")},
    "transfers_create": {
        "201": _links(
            "transfer",
            "GetTransfer",
            "SettleTransfer",
            "VoidTransfer",
            "FailTransfer",
            "GetSourceBalance",
            "ListSourceTransactions",
            "GetDestinationBalance",
        )
    },
    "transfer_batches_create": {
        "201": _links(
            "transfer",
            "GetTransfer",
            "SettleTransfer",
            "VoidTransfer",
            "FailTransfer",
            at="$response.body#/data/0/id",
        )
    },
    "transfers_settle": {
        "200": _links("transfer", "GetTransfer", "ReverseTransfer", "GetDestinationBalance")
    },
    "transfers_void": {"200": _links("transfer", "GetTransfer", "SettleTransfer")},
    "transfers_reverse": {"200": _links("transfer", "GetTransfer", "ReverseTransfer")},
    "test_helpers_fail_transfer": {
        "200": _links("transfer", "GetTransfer", "SettleTransfer", "VoidTransfer")
    },
    "webhook_endpoints_create": {"201": _ENDPOINT_LINKS},
    "webhook_endpoints_update": {
        "200": _links("endpoint", "GetWebhookEndpoint", "DeleteWebhookEndpoint")
    },
    "webhook_endpoints_rotate_secret": {"200": _links("endpoint", "GetWebhookEndpoint")},
    # After a delete the endpoint must be gone: the fuzzer reads it again and expects 404.
    "webhook_endpoints_delete": {
        "204": {
            "GetDeletedWebhookEndpoint": _link(
                "webhook_endpoints_retrieve", endpoint_id="$request.path.endpoint_id"
            )
        }
    },
    "events_list": {
        "200": {
            "GetEvent": _link("events_retrieve", event_id=_FIRST_EVENT),
            "RedeliverEvent": _link("events_redeliver", event_id=_FIRST_EVENT),
        }
    },
    "events_retrieve": {
        "200": {"RedeliverEvent": _link("events_redeliver", event_id="$response.body#/id")}
    },
}


class OpenPayAutoSchema(AutoSchema):  # type: ignore[misc]
    """The generator for /v1/: every operation answers with Request-Id and the rate-limit
    headers, every POST takes an Idempotency-Key, and responses carry their LINKS."""

    def get_override_parameters(self) -> list[Any]:
        parameters = [*super().get_override_parameters(), *RESPONSE_HEADERS]
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        return parameters

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for status, links in LINKS.get(operation["operationId"], {}).items():
            operation["responses"][status]["links"] = links
        # gunicorn refuses an over-long request line itself, before the rate limiter
        # counts the request: that answer has a Request-Id but no rate-limit headers.
        too_long = operation["responses"].get("414", {})
        for name in [name for name in too_long.get("headers", {}) if name.startswith("RateLimit")]:
            del too_long["headers"][name]
        return operation


# Strings never carry NUL (PostgreSQL cannot store it; DRF refuses it).
NO_NUL = "^[^\\u0000]*$"


class StrictBodyScheme(OpenApiSerializerExtension):  # type: ignore[misc,no-untyped-call]
    """A StrictSerializer refuses fields it does not know (`additionalProperties: false`)
    and strings holding NUL (a pattern). The pattern is set here, on the finished schema:
    set on the field, drf-spectacular would wrap a blank-allowed string in a `oneOf` that
    the empty string matches twice, which refuses it."""

    target_class = "payments.fields.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(
            self.target, direction, bypass_extensions=True
        )
        properties = schema.get("properties", {})
        for name, field in self.target.fields.items():
            if isinstance(field, StrictCharField) and name in properties:
                properties[name].setdefault("pattern", NO_NUL)
        schema["additionalProperties"] = False
        return schema
