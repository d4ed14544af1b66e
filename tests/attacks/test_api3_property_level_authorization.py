"""API3, broken object property level authorization (mass assignment): a body that sets
a field the client may only read — any field of the response or of the model behind it
that the request does not take (id, status, livemode, balance, secret, holder,
overdraft_limit …) — is a `400 validation_error` naming that field, and nothing is
written. One attack per operation and field, all taken from the schema and the models.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import problem
from tests.attacks.support import (
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    path_for,
    read_only_fields,
    snapshot,
    with_value,
)

pytestmark = pytest.mark.django_db


def places(operation: Operation) -> list[tuple[str, tuple[str | int, ...], dict[str, Any]]]:
    """Where a read-only field can be slipped in: the body itself and, for a body that
    carries a list of objects (a batch), its first item. (pointer prefix, path, the
    schema of what is there)"""
    request = operation.request or {}
    found: list[tuple[str, tuple[str | int, ...], dict[str, Any]]] = [("", (), request)]
    for name, schema in request.get("properties", {}).items():
        if schema.get("type") == "array" and schema.get("items", {}).get("type") == "object":
            found.append((f"{name}[0].", (name, 0), schema["items"]))
    return found


CASES = [
    (operation, prefix + name, (*path, name), value)
    for operation in catalogue()
    if operation.takes_body
    for prefix, path, schema in places(operation)
    for name, value in read_only_fields(operation, request=schema).items()
]


@pytest.mark.parametrize(
    ("operation", "pointer", "path", "value"),
    CASES,
    ids=[f"{operation} {pointer}" for operation, pointer, _, _ in CASES],
)
def test_setting_a_read_only_field(
    api: Api,
    alices: Objects,
    operation: Operation,
    pointer: str,
    path: tuple[str | int, ...],
    value: Any,
) -> None:
    body = with_value(body_for(operation, alices).value, path, value)
    before = snapshot()

    response = api.request(operation.method, path_for(operation, alices), body)

    status, code, param = problem(response)
    named = {param} | {e["param"] for e in response.json().get("errors", [])}
    assert (status, code) == (400, "validation_error"), response.content[:300]
    assert pointer in named, f"{pointer} not named in {response.content[:300]!r}"
    assert snapshot() == before, changes(before, snapshot())
