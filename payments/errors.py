"""Every error of the API as application/problem+json (RFC 9457), 5xx included.

The body carries a stable `code` a program can switch on, a `detail` a person can act
on, the `param` at fault when there is one, and the `request_id` to quote to support.
`type` links to the code's entry in docs/errors.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf

from ledger import errors as ledger_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Authentication required",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    411: "Length required",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
}

# The HTTP status of each ledger error code.
LEDGER_STATUS: dict[str, int] = {
    "invalid_amount": 400,
    "invalid_currency": 400,
    "currency_mismatch": 400,
    "same_account": 400,
    "amount_exceeds_hold": 400,
    "balance_overflow": 400,
    "validation_error": 400,
    "batch_too_large": 400,
    "insufficient_funds": 402,
    "not_found": 404,
    "account_frozen": 409,
    "account_closed": 409,
    "account_not_empty": 409,
    "transfer_not_pending": 409,
    "transfer_not_settled": 409,
    "client_reference_reused": 422,
}


class ApiError(Exception):
    """An error the API answers with, anywhere in a view or service call."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        param: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.param = param
        self.errors = errors
        self.headers = dict(headers or {})


def not_found(what: str = "object") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


def from_ledger(error: ledger_errors.LedgerError) -> ApiError:
    code = "invalid_currency" if isinstance(error, ledger_errors.UnknownCurrency) else error.code
    param = error.param
    if code == "not_found":
        # The ledger says "id" for the object in the path; a body field keeps its name.
        param = None if param == "id" else param
    return ApiError(LEDGER_STATUS.get(code, 400), code, str(error), param=param)


def problem_body(request: HttpRequest | None, error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{settings.PUBLIC_BASE_URL}/docs/errors#{error.code}",
        "title": TITLES.get(error.status, "Error"),
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.param:
        body["param"] = error.param
    if error.errors:
        body["errors"] = error.errors
    body["request_id"] = getattr(request, "request_id", None)
    return body


def problem_response(request: HttpRequest | None, error: ApiError) -> HttpResponse:
    # Remembered for the request log, which runs after the response is built.
    raw = getattr(request, "_request", request)
    if raw is not None:
        raw.api_error_code = error.code  # type: ignore[union-attr]
    response = HttpResponse(
        json.dumps(problem_body(request, error)),
        status=error.status,
        content_type=PROBLEM_JSON,
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def as_api_error(exc: BaseException, request: HttpRequest | None) -> ApiError:
    """Translate anything raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ledger_errors.LedgerError):
        return from_ledger(exc)
    if isinstance(exc, drf.ValidationError):
        return _validation_error(exc.detail)
    if isinstance(exc, drf.ParseError):
        return ApiError(
            400, "validation_error", f"The request body is not valid JSON: {exc.detail}"
        )
    if isinstance(exc, drf.NotAuthenticated):
        return ApiError(
            401,
            "authentication_required",
            "Send your API key or OAuth token as `Authorization: Bearer <credential>`.",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if isinstance(exc, drf.AuthenticationFailed):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid_api_key"
        return ApiError(
            401, str(code), str(exc.detail), headers={"WWW-Authenticate": 'Bearer realm="api"'}
        )
    if isinstance(exc, PermissionDenied):
        return ApiError(403, "insufficient_scope", str(exc) or "Forbidden.")
    if isinstance(exc, drf.PermissionDenied):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "insufficient_scope"
        return ApiError(403, str(code), str(exc.detail))
    if isinstance(exc, Http404 | drf.NotFound):
        return not_found()
    if isinstance(exc, drf.MethodNotAllowed):
        return ApiError(405, "method_not_allowed", str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    if isinstance(exc, drf.NotAcceptable):
        return ApiError(406, "not_acceptable", "Responses are application/json.")
    if isinstance(exc, RequestDataTooBig):
        return ApiError(413, "request_too_large", "The request body is too large.")
    if isinstance(exc, drf.Throttled):
        return ApiError(429, "rate_limited", "Too many requests.")
    log.exception("unhandled error serving %s", getattr(request, "request_id", "?"), exc_info=exc)
    return ApiError(
        500,
        "internal_error",
        "Something went wrong on our side. It has been logged; quote the request_id "
        "if you contact support.",
    )


def _validation_error(detail: Any) -> ApiError:
    errors = list(_flatten(detail))
    codes = {error["code"] for error in errors}
    params = {error["param"] for error in errors}
    if codes == {"invalid_amount"} and len(params) == 1:
        return ApiError(400, "invalid_amount", errors[0]["detail"], param=errors[0]["param"])
    if codes == {"invalid_currency"} and len(params) == 1:
        return ApiError(400, "invalid_currency", errors[0]["detail"], param=errors[0]["param"])
    first = errors[0] if errors else {"param": "", "detail": "Invalid request."}
    return ApiError(
        400,
        "validation_error",
        f"{first['param']}: {first['detail']}" if first["param"] else first["detail"],
        param=first["param"] or None if len(params) == 1 else None,
        errors=errors,
    )


def _flatten(detail: Any, prefix: str = "") -> Any:
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if isinstance(key, int):  # an item of a list: transfers[3]
                yield from _flatten(value, f"{prefix}[{key}]")
                continue
            name = "" if key == "non_field_errors" else str(key)
            yield from _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        if detail and all(isinstance(item, drf.ErrorDetail) for item in detail):
            for item in detail:
                yield {"param": prefix, "code": _code(item.code), "detail": str(item)}
        else:
            for index, item in enumerate(detail):
                yield from _flatten(item, f"{prefix}[{index}]")
    elif isinstance(detail, drf.ErrorDetail):
        yield {"param": prefix, "code": _code(detail.code), "detail": str(detail)}


def _code(code: str | None) -> str:
    # DRF's generic field codes are folded into ours.
    return {"invalid": "invalid_value", None: "invalid_value"}.get(code, code or "invalid_value")


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF's hook: every exception raised in an API view becomes problem+json."""
    request = context.get("request")
    return problem_response(request, as_api_error(exc, request))
