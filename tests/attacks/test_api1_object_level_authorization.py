"""API1, broken object level authorization: another organization's ids, the other
mode's ids and, for an OAuth token, the ids of accounts its user did not share, are
`404 not_found` wherever they are named (in the path or in the body), answered exactly
as an id that does not exist, and nothing changes. Reads name none of them either. An
OAuth token reaches only the webhook endpoints made under its own grant: the ones the
organization made itself are as missing to it as another tenant's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.support import OpenApi, Party, problem
from tests.attacks.support import (
    NOWHERE_OBJECTS,
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    path_for,
    snapshot,
    with_value,
)

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()
NOWHERE = NOWHERE_OBJECTS
OBJECT_OPERATIONS = [o for o in OPERATIONS if o.names_an_object]
READS = [o for o in OPERATIONS if o.method == "GET"]
REFERENCES = [
    (operation, reference.pointer)
    for operation in OPERATIONS
    for reference in body_for(operation, NOWHERE).references
]
MODES = ["live-key-on-test-ids", "test-key-on-live-ids"]


def reference_id(case: Any) -> str:
    return str(case)


def without_request_id(response: Any) -> dict[str, Any]:
    body = dict(json.loads(response.content))
    body.pop("request_id")
    return body


def refused_as_missing(
    api: Api, operation: Operation, victims: Objects, own: Objects, body: Any = None
) -> None:
    """`api` names `victims`' object in the path: 404, as for an id that does not exist,
    and nothing written."""
    value = body if body is not None else body_for(operation, own).value
    before = snapshot()
    response = api.request(operation.method, path_for(operation, victims), value)
    assert problem(response)[:2] == (404, "not_found"), response.content[:300]
    assert snapshot() == before, changes(before, snapshot())
    missing = api.request(operation.method, path_for(operation, NOWHERE), value)
    assert without_request_id(response) == without_request_id(missing)


def refused_in_body(
    api: Api, operation: Operation, pointer: str, own: Objects, victims: Objects
) -> None:
    """`api` names its own objects, but `victims`' at `pointer` in the body."""
    body = body_for(operation, own)
    [reference] = [r for r in body.references if r.pointer == pointer]
    value = with_value(body.value, reference.path, getattr(victims, reference.kind))
    before = snapshot()
    response = api.request(operation.method, path_for(operation, own), value)
    assert problem(response) == (404, "not_found", pointer), response.content[:300]
    assert snapshot() == before, changes(before, snapshot())
    missing = with_value(body.value, reference.path, getattr(NOWHERE, reference.kind))
    assert without_request_id(response) == without_request_id(
        api.request(operation.method, path_for(operation, own), missing)
    )


def names_none_of(response: Any, ids: set[str]) -> None:
    text = response.content.decode()
    assert response.status_code == 200
    assert not {i for i in ids if i in text}, f"{sorted(i for i in ids if i in text)} in {text}"


# Another organization ---------------------------------------------------------------------


@pytest.mark.parametrize("operation", OBJECT_OPERATIONS, ids=str)
def test_another_tenants_id_in_the_path(
    openapi: OpenApi, charlie: Party, charlies: Objects, alices: Objects, operation: Operation
) -> None:
    refused_as_missing(Api(openapi, charlie.secret), operation, alices, charlies)


@pytest.mark.parametrize(("operation", "pointer"), REFERENCES, ids=reference_id)
def test_another_tenants_id_in_the_body(
    openapi: OpenApi,
    charlie: Party,
    charlies: Objects,
    alices: Objects,
    operation: Operation,
    pointer: str,
) -> None:
    refused_in_body(Api(openapi, charlie.secret), operation, pointer, charlies, alices)


@pytest.mark.parametrize("operation", READS, ids=str)
def test_another_tenants_reads_name_nothing_of_ours(
    openapi: OpenApi, charlie: Party, charlies: Objects, alices: Objects, operation: Operation
) -> None:
    response = Api(openapi, charlie.secret).get(path_for(operation, charlies))
    names_none_of(response, alices.every_id())


# The other mode ---------------------------------------------------------------------------


@pytest.fixture
def modes(
    request: pytest.FixtureRequest,
    openapi: OpenApi,
    alice: Party,
    alices: Objects,
    alices_live: Objects,
    alice_live_key: str,
) -> tuple[Api, Objects, Objects]:
    """(the attacker's client, its own objects, the other mode's objects)."""
    if request.param == "live-key-on-test-ids":
        return Api(openapi, alice_live_key), alices_live, alices
    return Api(openapi, alice.secret), alices, alices_live


@pytest.mark.parametrize("modes", MODES, indirect=True)
@pytest.mark.parametrize("operation", OBJECT_OPERATIONS, ids=str)
def test_the_other_modes_id_in_the_path(
    modes: tuple[Api, Objects, Objects], operation: Operation
) -> None:
    api, own, other = modes
    refused_as_missing(api, operation, other, own)


@pytest.mark.parametrize("modes", MODES, indirect=True)
@pytest.mark.parametrize(("operation", "pointer"), REFERENCES, ids=reference_id)
def test_the_other_modes_id_in_the_body(
    modes: tuple[Api, Objects, Objects], operation: Operation, pointer: str
) -> None:
    api, own, other = modes
    refused_in_body(api, operation, pointer, own, other)


@pytest.mark.parametrize("modes", MODES, indirect=True)
@pytest.mark.parametrize("operation", READS, ids=str)
def test_the_other_modes_reads_name_nothing_of_it(
    modes: tuple[Api, Objects, Objects], operation: Operation
) -> None:
    api, own, other = modes
    names_none_of(api.get(path_for(operation, own)), other.every_id())


# An OAuth token, the accounts its user did not share and the organization's endpoints ----


@pytest.mark.parametrize("operation", OBJECT_OPERATIONS, ids=str)
def test_an_oauth_tokens_unshared_object_in_the_path(
    app: Api, granted: Objects, hidden: Objects, operation: Operation
) -> None:
    """`hidden`: objects on accounts alice did not share, and an endpoint she made."""
    refused_as_missing(app, operation, hidden, granted)


@pytest.mark.parametrize(("operation", "pointer"), REFERENCES, ids=reference_id)
def test_an_oauth_tokens_unshared_object_in_the_body(
    app: Api, granted: Objects, hidden: Objects, operation: Operation, pointer: str
) -> None:
    refused_in_body(app, operation, pointer, granted, hidden)


@pytest.mark.parametrize("operation", READS, ids=str)
def test_an_oauth_tokens_reads_name_nothing_it_was_not_granted(
    app: Api, alices: Objects, granted: Objects, hidden: Objects, operation: Operation
) -> None:
    names_none_of(app.get(path_for(operation, granted)), hidden.every_id() | {alices.endpoint})


# Idempotency keys ------------------------------------------------------------------------

POSTS = [o for o in OPERATIONS if o.method == "POST"]


@pytest.mark.parametrize("who", ["another-tenant", "the-other-mode"])
@pytest.mark.parametrize("operation", POSTS, ids=str)
def test_an_idempotency_key_replays_nothing_to_anyone_else(
    openapi: OpenApi,
    api: Api,
    alices: Objects,
    alices_live: Objects,
    charlie: Party,
    charlies: Objects,
    alice_live_key: str,
    operation: Operation,
    who: str,
) -> None:
    """Keys are kept per organization and mode: the same key from anyone else runs their
    own request, and never answers with a copy of ours."""
    key = "order-1042"
    first = api.request(
        operation.method,
        path_for(operation, alices),
        body_for(operation, alices).value,
        idempotency_key=key,
    )
    assert first.status_code == operation.success
    other, own = (
        (Api(openapi, charlie.secret), charlies)
        if who == "another-tenant"
        else (Api(openapi, alice_live_key), alices_live)
    )
    second = other.request(
        operation.method,
        path_for(operation, own),
        body_for(operation, own).value,
        idempotency_key=key,
    )
    assert "Idempotent-Replayed" not in second.headers
    names_none_of_them = not {i for i in alices.every_id() if i in second.content.decode()}
    assert names_none_of_them, second.content[:300]
