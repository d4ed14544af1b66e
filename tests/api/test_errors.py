"""Whatever a client sends, the answer is application/problem+json with a stable
`code`, and a refused request writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.models import MAX_AMOUNT
from tests.api.support import Api, Books, Party, problem

pytestmark = pytest.mark.django_db


def payment(party: Party, **fields: Any) -> dict[str, Any]:
    return {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 1_050,
        "currency": "USD",
        **fields,
    }


# Routes and methods ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("GET", "/v1/"),
        ("GET", "/v1/accounts/"),
        ("GET", "/v1/accounts/acct_x/balance/extra"),
        ("POST", "/v1/charges"),
        ("POST", "/v1/transfers/tr_x/refund"),
        ("DELETE", "/v1/customers/cus_1"),
    ],
)
def test_an_unknown_route_is_a_404_problem(api: Api, method: str, path: str) -> None:
    response = api.request(method, path, {})
    assert problem(response) == (404, "not_found", None)
    assert response.json()["detail"] == "No such route."


def test_an_unknown_route_is_a_404_problem_without_credentials_too(anonymous: Api) -> None:
    assert problem(anonymous.get("/v1/nope")) == (404, "not_found", None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/accounts"),
        ("PUT", "/v1/accounts/{usd}"),
        ("PATCH", "/v1/accounts/{usd}"),
        ("POST", "/v1/accounts/{usd}/balance"),
        ("DELETE", "/v1/transfers"),
        ("GET", "/v1/transfer_batches"),
        ("GET", "/v1/test_helpers/accounts/{usd}/fund"),
    ],
)
def test_a_method_the_route_does_not_have_is_405(
    api: Api, alice: Party, method: str, path: str
) -> None:
    before = Books.now()
    response = api.request(method, path.format(usd=alice.usd.id), {})
    assert problem(response) == (405, "method_not_allowed", None)
    assert "Allow" in response.headers
    assert Books.now() == before


def test_a_405_names_the_methods_the_route_has(api: Api) -> None:
    response = api.request("DELETE", "/v1/transfers", {})
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/x-www-form-urlencoded", "amount=1050&currency=USD"),
        ("text/plain", "{}"),
    ],
)
def test_a_body_that_is_not_json_is_415(
    api: Api, alice: Party, content_type: str, raw: str
) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", raw=raw, content_type=content_type)
    assert problem(response) == (415, "unsupported_media_type", None)
    assert Books.now() == before


# Bodies that are not the JSON object they should be ---------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": ',
        b"{'amount': 1050}",
        b'{"amount": 1050,}',
        b'{"amount": 1050} trailing',
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"description": "a\x00b"}',
        b"\xef\xbb\xbf{}",
    ],
    ids=[
        "truncated",
        "single-quotes",
        "trailing-comma",
        "trailing-text",
        "nan",
        "infinity",
        "raw-nul",
        "bom",
    ],
)
def test_malformed_json_is_a_400_problem(api: Api, raw: bytes) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", raw=raw)
    assert problem(response) == (400, "validation_error", None)
    assert Books.now() == before


@pytest.mark.parametrize(
    "raw", [b'{"description": "\xff\xfe"}', b'{"description": "\xc3\x28"}', b"\xed\xa0\x80"]
)
def test_invalid_utf8_is_a_400_problem(api: Api, raw: bytes) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", raw=raw)
    assert problem(response) == (400, "validation_error", None)
    assert "UTF-8" in response.json()["detail"]
    assert Books.now() == before


@pytest.mark.parametrize("body", [[], "transfer", 1050, None, True])
def test_a_body_that_is_not_an_object_is_refused(api: Api, body: object) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", raw=json.dumps(body))
    assert problem(response) == (400, "validation_error", None)
    assert Books.now() == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/transfers", "description"),
        ("/v1/transfers", "source_account"),
        ("/v1/accounts", "name"),
    ],
)
def test_a_nul_character_in_a_string_is_refused(
    api: Api, alice: Party, path: str, field: str
) -> None:
    body = payment(alice) if path == "/v1/transfers" else {"currency": "USD"}
    body[field] = "before\u0000after"
    before = Books.now()
    assert problem(api.post(path, body)) == (400, "validation_error", field)
    assert Books.now() == before


@pytest.mark.parametrize(
    "metadata", [{"order": "10\u000042"}, {"or\u0000der": "1042"}], ids=["value", "key"]
)
def test_a_nul_character_in_metadata_is_refused(
    api: Api, alice: Party, metadata: dict[str, str]
) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, metadata=metadata))
    assert problem(response)[:2] == (400, "validation_error")
    assert response.json()["param"].startswith("metadata")
    assert Books.now() == before


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/accounts", '{"currency": "USD", "name": "\\ud800"}'),
        ("/v1/accounts", '{"currency": "USD", "metadata": {"note": "\\udfff"}}'),
        ("/v1/accounts", '{"currency": "USD", "metadata": {"\\ud800": "x"}}'),
    ],
    ids=["name", "metadata-value", "metadata-key"],
)
def test_a_lone_surrogate_escaped_in_a_string_is_refused(api: Api, path: str, raw: str) -> None:
    before = Books.now()
    response = api.post(path, raw=raw)
    assert problem(response)[:2] == (400, "validation_error")
    assert Books.now() == before


def test_a_one_megabyte_body_is_refused(api: Api, alice: Party) -> None:
    raw = json.dumps(payment(alice)) + " " * (1024 * 1024)
    before = Books.now()
    response = api.post("/v1/transfers", raw=raw)
    assert problem(response) == (413, "request_too_large", None)
    assert Books.now() == before


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_a_thousand_deep_is_refused(api: Api, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = opener * 1_000 + "1" + closer * 1_000
    before = Books.now()
    response = api.post("/v1/transfers", raw=raw)
    assert problem(response) == (400, "validation_error", None)
    assert "nested" in response.json()["detail"]
    assert Books.now() == before


def test_brackets_inside_strings_do_not_count_as_nesting(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, description="[" * 1_000 + "{" * 400))
    assert problem(response) == (400, "validation_error", "description")
    response = api.post("/v1/transfers", payment(alice, description="[{" * 50))
    assert response.status_code == 201


# Amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [10.5, 10.0, 1e3, "100", "10.50", -1, -1050, 0, True, False, None, 2**63, 2**64, [100], {}],
    ids=lambda a: repr(a),
)
def test_an_amount_that_is_not_a_positive_integer_is_400_invalid_amount(
    api: Api, alice: Party, amount: object
) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, amount=amount))
    assert problem(response) == (400, "invalid_amount", "amount")
    assert Books.now() == before


def test_a_float_amount_written_as_an_exponent_is_refused(api: Api, alice: Party) -> None:
    raw = json.dumps(payment(alice)).replace("1050", "1.05e3")
    assert problem(api.post("/v1/transfers", raw=raw)) == (400, "invalid_amount", "amount")


def test_the_largest_integer_amount_is_valid_and_refused_only_for_want_of_funds(
    api: Api, alice: Party
) -> None:
    response = api.post("/v1/transfers", payment(alice, amount=MAX_AMOUNT))
    assert problem(response) == (402, "insufficient_funds", "amount")


@pytest.mark.parametrize(
    ("currency", "code"),
    [
        ("XYZ", "invalid_currency"),
        ("usd", "invalid_currency"),
        ("USDT", "invalid_currency"),
        (840, "invalid_currency"),
        ("", "validation_error"),
    ],
)
def test_a_currency_we_do_not_know_is_refused(
    api: Api, alice: Party, currency: object, code: str
) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, currency=currency))
    assert problem(response) == (400, code, "currency")
    assert Books.now() == before


def test_an_unknown_currency_is_named_invalid_currency(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, currency="XYZ"))
    assert problem(response) == (400, "invalid_currency", "currency")


# Fields we do not know ---------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["balance", "status", "livemode", "organization", "holder", "amout", "id"]
)
def test_an_unknown_transfer_field_is_400_naming_it(api: Api, alice: Party, field: str) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, **{field: "settled"}))
    assert problem(response) == (400, "validation_error", field)
    assert response.json()["errors"] == [
        {"param": field, "code": "unknown_field", "detail": "unknown field"}
    ]
    assert Books.now() == before


@pytest.mark.parametrize("field", ["balance", "status", "livemode", "organization", "holder"])
def test_an_unknown_account_field_is_400_naming_it(api: Api, field: str) -> None:
    before = Books.now()
    response = api.post("/v1/accounts", {"currency": "USD", field: 1_000_000})
    assert problem(response) == (400, "validation_error", field)
    assert Books.now() == before


def test_several_unknown_fields_are_all_named(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice, livemode=True, balance=5))
    assert problem(response) == (400, "validation_error", None)
    assert [e["param"] for e in response.json()["errors"]] == ["balance", "livemode"]


def test_an_unknown_query_parameter_is_refused(api: Api) -> None:
    response = api.get("/v1/transfers", query={"status": "pending"})
    assert problem(response) == (400, "validation_error", "status")


# Our own failures --------------------------------------------------------------------


def test_an_unexpected_error_is_a_500_problem_not_an_html_page(
    api: Api, alice: Party, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("payments.apis.accounts.balance_json", broken)
    response = api.get(f"/v1/accounts/{alice.usd.id}/balance")
    assert problem(response) == (500, "internal_error", None)
    assert "boom" not in response.json()["detail"]


def test_every_problem_links_to_the_documentation_of_its_code(api: Api) -> None:
    body = api.get("/v1/transfers/tr_00000000000000000000000000").json()
    assert body["type"].endswith("/docs/errors#not_found")
    assert body["title"] == "Not found"


def test_a_post_to_an_unknown_path_is_a_404_problem_not_a_csrf_page() -> None:
    from django.test import Client

    browser_like = Client(enforce_csrf_checks=True)
    response = browser_like.post(
        "/v1/test_helpers/transfers/tr_…/fail", "{}", content_type="application/json"
    )
    assert problem(response) == (404, "not_found", None)
