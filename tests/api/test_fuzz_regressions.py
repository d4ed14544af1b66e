"""What `make fuzz` (Schemathesis against the served schema, tools/fuzz/) found, kept
found: each test failed before its fix.

The served schema is also what the fuzzer believes, so where it was looser than the
server (a request it allowed was refused as malformed) or claimed what the server never
promised, the tests pin the schema down too.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ledger.models import MAX_AMOUNT
from ledger.selectors import currency_exponents
from tests.api.support import (
    SANDBOX_BALANCE,
    Api,
    Books,
    OpenApi,
    Party,
    balance,
    make_party,
    problem,
)

pytestmark = pytest.mark.django_db


# The ledger ----------------------------------------------------------------------------


def test_funding_past_what_the_test_funding_source_can_give_is_balance_overflow(
    api: Api, alice: Party
) -> None:
    # The platform's test funding account (a system account, allowed below zero) has
    # already given the sandbox its money, so giving 2^63 - 1 more would take it below
    # -(2^63 - 1). PostgreSQL's one-round-trip post raised `bigint out of range`: a 500.
    before = Books.now()
    response = api.post(f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": MAX_AMOUNT})
    assert problem(response)[:2] == (400, "balance_overflow")
    assert Books.now() == before


def test_a_tenant_that_used_up_its_funding_source_stops_nobody_else(
    api: Api, alice: Party, charlie: Party
) -> None:
    drained = api.post(
        f"/v1/test_helpers/accounts/{alice.payee.id}/fund",
        {"amount": MAX_AMOUNT - SANDBOX_BALANCE},
    )
    assert drained.status_code == 200, drained.content
    assert problem(api.post(f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": 1}))[
        :2
    ] == (400, "balance_overflow")
    others = Api(api.openapi, charlie.secret)
    assert (
        others.post(f"/v1/test_helpers/accounts/{charlie.payee.id}/fund", {"amount": 1}).status_code
        == 200
    )
    newcomer = make_party("dora")  # a new sandbox is funded from a source of its own
    assert balance(newcomer.usd)[0] == SANDBOX_BALANCE


def test_funding_up_to_what_the_source_can_give_still_works(api: Api, alice: Party) -> None:
    response = api.post(f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": 10**12})
    assert response.status_code == 200
    assert balance(alice.payee) == (10**12, 0, 10**12)


# Routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/test_helpers/transfers/H%0A_/fail",  # what the fuzzer sent
        "/v1/accounts/acct_1%0A",
        "/v1/%0A",
    ],
)
def test_a_path_holding_a_newline_is_a_problem_json_404(api: Api, path: str) -> None:
    # The catch-all route did not match across a newline, so Django answered with its
    # HTML 404 page.
    response = api.post(path) if path.endswith("/fail") else api.get(path)
    assert problem(response)[:2] == (404, "not_found")


# The schema says what the server accepts -----------------------------------------------


def request_schema(openapi: OpenApi, name: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        "urn:schema", Resource.from_contents(openapi.document, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"urn:schema#/components/schemas/{name}"}, registry=registry
    )


TRANSFER = {
    "source_account": "acct_1",
    "destination_account": "acct_2",
    "amount": 1050,
    "currency": "USD",
}


def test_request_bodies_refuse_unknown_fields_in_the_schema_as_the_server_does(
    openapi: OpenApi, api: Api, alice: Party
) -> None:
    # The schema allowed any extra property, and the server refuses them all.
    assert not request_schema(openapi, "TransferInRequest").is_valid({**TRANSFER, "x": 1})
    response = api.post(
        "/v1/transfers",
        {**TRANSFER, "source_account": alice.usd.id, "destination_account": alice.payee.id, "x": 1},
    )
    assert problem(response) == (400, "validation_error", "x")
    for name, schema in openapi.document["components"]["schemas"].items():
        if name.endswith("Request"):
            assert schema.get("additionalProperties") is False, name


def test_the_schema_lists_the_currencies_the_books_hold(openapi: OpenApi) -> None:
    # A three-letter string was all the schema said; "XYZ" was refused as invalid_currency.
    enum = openapi.document["components"]["schemas"]["CurrencyEnum"]["enum"]
    assert sorted(enum) == sorted(currency_exponents())
    assert not request_schema(openapi, "TransferInRequest").is_valid(
        {**TRANSFER, "currency": "XYZ"}
    )


def test_an_empty_description_is_valid_by_the_schema(openapi: OpenApi) -> None:
    # The NUL-refusing pattern, set on a blank-allowed field, made drf-spectacular wrap it
    # in a oneOf that "" matched twice: the schema refused what the server accepts.
    validator = request_schema(openapi, "TransferInRequest")
    assert validator.is_valid({**TRANSFER, "description": ""})
    assert not validator.is_valid({**TRANSFER, "description": "a\x00b"})


@pytest.mark.parametrize(
    ("metadata", "valid"),
    [
        ({f"k{i}": "v" for i in range(50)}, True),
        ({f"k{i}": "v" for i in range(51)}, False),
        ({"k" * 40: "v"}, True),
        ({"k" * 41: "v"}, False),
        ({"": "v"}, False),
        ({"k": "v" * 501}, False),
    ],
    ids=["50-keys", "51-keys", "40-char-key", "41-char-key", "empty-key", "501-char-value"],
)
def test_metadata_limits_are_in_the_schema_and_the_server_agrees(
    openapi: OpenApi, api: Api, alice: Party, metadata: dict[str, str], valid: bool
) -> None:
    assert (
        request_schema(openapi, "AccountCreateInRequest").is_valid(
            {"currency": "USD", "metadata": metadata}
        )
        is valid
    )
    response = api.post("/v1/accounts", {"currency": "USD", "metadata": metadata})
    assert (response.status_code == 201) is valid, response.content


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://example.com/hooks", True),
        ("HTTPS://example.com", True),
        ("ftp://example.com/", False),
        ("https://user@example.com/", False),
        ("https:///path", False),
        ("https://example.com/a b", False),
    ],
)
def test_the_webhook_url_shape_is_in_the_schema_and_the_server_agrees(
    openapi: OpenApi, api: Api, url: str, valid: bool
) -> None:
    body = {"url": url, "enabled_events": ["*"]}
    assert request_schema(openapi, "EndpointCreateInRequest").is_valid(body) is valid
    response = api.post("/v1/webhook_endpoints", body)
    assert (response.status_code == 201) is valid, response.content


def test_a_webhook_url_is_shown_as_registered_and_the_schema_does_not_call_it_a_uri(
    openapi: OpenApi, api: Api
) -> None:
    # An IRI (non-ASCII host) is accepted and shown back as given; the schema said
    # `format: uri`, which an IRI is not, so the answer broke the schema.
    url = "https://bücher.example/hooks"
    response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
    assert response.status_code == 201
    assert response.json()["url"] == url
    shown = openapi.document["components"]["schemas"]["WebhookEndpointOut"]["properties"]["url"]
    assert "format" not in shown


def test_the_idempotency_key_pattern_is_what_the_server_accepts(
    openapi: OpenApi, api: Api, alice: Party
) -> None:
    [parameter] = [
        p
        for p in openapi.document["paths"]["/v1/accounts"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    validator = Draft202012Validator(parameter["schema"])
    for key, accepted in [("k-1", True), ("k" * 255, True), ("k" * 256, False), ("é-1", True)]:
        assert validator.is_valid(key) is accepted, key
        response = api.post("/v1/accounts", {"currency": "USD"}, headers={"Idempotency-Key": key})
        assert (response.status_code == 201) is accepted, (key, response.content)


def test_list_operations_document_limit_and_cursor(openapi: OpenApi) -> None:
    lists = 0
    for path, operations in openapi.document["paths"].items():
        ok = operations.get("get", {}).get("responses", {}).get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("$ref", "").endswith("List"):
            lists += 1
            names = {p["name"] for p in operations["get"].get("parameters", [])}
            assert {"limit", "cursor"} <= names, path
    assert lists == 6


def test_every_response_documents_request_id(openapi: OpenApi) -> None:
    for operations in openapi.document["paths"].values():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert response["headers"]["Request-Id"]["required"] is True, (method, status)


def test_responses_link_to_what_their_ids_lead_to(openapi: OpenApi) -> None:
    # The stateful fuzz phase follows these; every link names a real operation and a
    # parameter that operation has.
    operations = {
        operation["operationId"]: operation
        for path_item in openapi.document["paths"].values()
        for operation in path_item.values()
    }
    links = [
        link
        for operation in operations.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 30
    for link in links:
        target = operations[link["operationId"]]
        names = {p["name"] for p in target.get("parameters", [])}
        assert set(link["parameters"]) <= names, link


# Strings are taken as sent ---------------------------------------------------------------


def test_a_whitespace_account_id_is_an_account_that_does_not_exist(api: Api, alice: Party) -> None:
    # DRF trimmed strings, so "\x1f" (whitespace to Python) became "" and was refused as
    # blank, though the schema allows any non-empty string there.
    response = api.post(
        "/v1/transfer_batches",
        {
            "transfers": [
                {**TRANSFER, "source_account": alice.usd.id, "destination_account": "\x1f"}
            ]
        },
    )
    assert problem(response)[:2] == (404, "not_found")


def test_names_are_stored_as_sent_not_trimmed(api: Api) -> None:
    response = api.post("/v1/accounts", {"currency": "USD", "name": " Payouts "})
    assert response.status_code == 201
    assert response.json()["name"] == " Payouts "
