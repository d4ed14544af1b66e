"""The schema every other test checks responses against: it must describe every
operation, and the checker must refuse what the schema does not allow."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver

from tests.api.support import Api, OpenApi, Party

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("get", "/v1/accounts"),
    ("post", "/v1/accounts"),
    ("get", "/v1/accounts/{account_id}"),
    ("get", "/v1/accounts/{account_id}/balance"),
    ("get", "/v1/accounts/{account_id}/transactions"),
    ("get", "/v1/transfers"),
    ("post", "/v1/transfers"),
    ("get", "/v1/transfers/{transfer_id}"),
    ("post", "/v1/transfers/{transfer_id}/settle"),
    ("post", "/v1/transfers/{transfer_id}/void"),
    ("post", "/v1/transfers/{transfer_id}/reverse"),
    ("post", "/v1/transfer_batches"),
    ("post", "/v1/test_helpers/accounts/{account_id}/fund"),
    ("post", "/v1/test_helpers/transfers/{transfer_id}/fail"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{event_id}"),
    ("post", "/v1/events/{event_id}/redeliver"),
    ("get", "/v1/webhook_endpoints"),
    ("post", "/v1/webhook_endpoints"),
    ("get", "/v1/webhook_endpoints/{endpoint_id}"),
    ("patch", "/v1/webhook_endpoints/{endpoint_id}"),
    ("delete", "/v1/webhook_endpoints/{endpoint_id}"),
    ("post", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"),
    ("get", "/v1/webhook_endpoints/{endpoint_id}/deliveries"),
    ("post", "/v1/webhook_endpoints/{endpoint_id}/replay"),
}


def test_the_schema_is_openapi_3_1(openapi: OpenApi) -> None:
    assert openapi.document["openapi"] == "3.1.0"


def test_the_schema_describes_every_operation_of_v1(openapi: OpenApi) -> None:
    documented = {
        (method, path)
        for path, operations in openapi.document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert documented >= OPERATIONS


def test_every_v1_route_is_in_the_schema(openapi: OpenApi) -> None:
    [v1] = [p for p in get_resolver().url_patterns if str(getattr(p, "pattern", "")) == "v1/"]
    assert isinstance(v1, URLResolver)
    routes = {
        "/v1/" + str(p.pattern).replace("<id:", "{").replace(">", "}")
        for p in v1.url_patterns
        if isinstance(p, URLPattern) and not str(p.pattern).startswith("^")
    }
    assert routes == {path for _, path in OPERATIONS}


def test_every_operation_documents_its_errors_as_problem_json(openapi: OpenApi) -> None:
    for method, path in OPERATIONS:
        responses = openapi.document["paths"][path][method]["responses"]
        for status in ("400", "401", "403", "404", "429", "500"):
            assert "application/problem+json" in responses[status]["content"], (method, path)


def test_the_checker_refuses_a_body_that_does_not_match(openapi: OpenApi) -> None:
    response = HttpResponse(
        b'{"object": "balance", "account": 1}',
        content_type="application/json",
        headers={"Request-Id": "req_01jf3k2v8y6q4m7c9d0e5f1g2h"},
    )
    with pytest.raises(AssertionError, match="does not match"):
        openapi.check("GET", "/v1/accounts/acct_1/balance", response)


def test_the_checker_refuses_a_status_the_operation_does_not_document(
    openapi: OpenApi,
) -> None:
    response = HttpResponse(
        b"{}", status=202, headers={"Request-Id": "req_01jf3k2v8y6q4m7c9d0e5f1g2h"}
    )
    response["Content-Type"] = "application/json"
    with pytest.raises(AssertionError, match="202 is not documented"):
        openapi.check("GET", "/v1/accounts", response)


def test_the_checker_refuses_an_answer_without_a_request_id(openapi: OpenApi) -> None:
    response = HttpResponse(b"{}", content_type="application/json")
    with pytest.raises(AssertionError, match="Request-Id"):
        openapi.check("GET", "/v1/accounts", response)


def test_the_checker_refuses_an_error_that_is_not_problem_json(openapi: OpenApi) -> None:
    response = HttpResponse(
        b'{"detail": "no"}',
        status=404,
        content_type="application/json",
        headers={"Request-Id": "req_01jf3k2v8y6q4m7c9d0e5f1g2h"},
    )
    with pytest.raises(AssertionError, match="answered 404 as 'application/json'"):
        openapi.check("GET", "/v1/accounts", response)


def test_the_checker_refuses_a_timestamp_that_is_not_rfc3339_utc(
    api: Api, alice: Party, openapi: OpenApi
) -> None:
    body = api.get(f"/v1/accounts/{alice.usd.id}").content
    shifted = body.replace(b'Z"', b'+02:00"')
    response = HttpResponse(
        shifted,
        content_type="application/json",
        headers={"Request-Id": "req_01jf3k2v8y6q4m7c9d0e5f1g2h"},
    )
    with pytest.raises(AssertionError, match="date-time"):
        openapi.check("GET", f"/v1/accounts/{alice.usd.id}", response)
