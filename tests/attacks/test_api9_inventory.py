"""API9, improper inventory management: what is served is what is documented, and the
suite knows every operation it attacks. No /v1 route hides outside the schema, every
operation declares its credentials, scope and error answers, no other version or
spelling of the API answers, and the guards below fail when a new operation needs
teaching (see tests/attacks/support.py)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.attacks.support import (
    BODY_OBJECTS,
    PATH_OBJECTS,
    REFERENCE,
    Api,
    Objects,
    Operation,
    catalogue,
    served_schema,
)

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()


def test_every_v1_route_is_in_the_schema() -> None:
    [v1] = [p for p in get_resolver().url_patterns if str(getattr(p, "pattern", "")) == "v1/"]
    assert isinstance(v1, URLResolver)
    routes = {
        "/v1/" + str(p.pattern).replace("<id:", "{").replace(">", "}")
        for p in v1.url_patterns
        if isinstance(p, URLPattern) and p.callback.__name__ != "unknown_route"
    }
    documented = {o.template for o in OPERATIONS}
    assert routes == documented


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_the_operation_declares_a_credential_a_scope_and_its_refusals(
    operation: Operation,
) -> None:
    item = served_schema()["paths"][operation.template][operation.method.lower()]
    assert {name for requirement in item["security"] for name in requirement} == {
        "apiKey",
        "oauth2",
    }
    assert operation.scope is not None
    for status in ("400", "401", "403", "404", "429", "500"):
        assert "application/problem+json" in item["responses"][status]["content"], status


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_the_suite_knows_what_the_operation_names(operation: Operation) -> None:
    """A new path parameter or body field that names an object must be added to
    PATH_OBJECTS or BODY_OBJECTS, or the tenancy attacks would silently skip it."""
    unknown = set(operation.path_parameters) - set(PATH_OBJECTS)
    assert not unknown, f"teach tests/attacks/support.py PATH_OBJECTS about {unknown}"

    def fields(schema: dict[str, object], path: str = "") -> list[str]:
        found = []
        properties = schema.get("properties")
        for name, inner in (properties if isinstance(properties, dict) else {}).items():
            found.append(name)
            if isinstance(inner, dict):
                found += fields(inner.get("items", inner), f"{path}{name}.")
        return found

    references = {f for f in fields(operation.request or {}) if REFERENCE.fullmatch(f)}
    assert references <= set(BODY_OBJECTS), (
        f"teach tests/attacks/support.py BODY_OBJECTS about {references - set(BODY_OBJECTS)}"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v0/accounts",
        "/v2/accounts",
        "/api/v1/accounts",
        "/V1/accounts",
        "/v1//accounts",
        "/v1/accounts/",
        "/v1/./accounts",
        "/v1/accounts%2F",
        "/v1/accounts;jsessionid=1",
        "/v1/accounts.json",
        "/v1/internal/accounts",
        "/v1/admin",
    ],
)
def test_no_other_version_or_spelling_of_the_api_answers(
    api: Api, alices: Objects, path: str
) -> None:
    response = api.client.get(path, headers={"Authorization": f"Bearer {api.credential}"})
    assert response.status_code in (301, 404), (path, response.status_code)
    assert alices.account.encode() not in response.content
