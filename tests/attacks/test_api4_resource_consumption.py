"""API4, unrestricted resource consumption: every bound the schema declares is enforced
(lists past maxItems, strings past maxLength, pages past the largest `limit`), and so
are the ones it cannot declare: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is `413`, JSON
nested past its depth limit and maps of a thousand keys are `400`. Nothing is written.

The rate limits under concurrency are in test_api4_rate_limits.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from tests.api.support import problem
from tests.attacks.support import (
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    example,
    path_for,
    pointer,
    snapshot,
    with_value,
)

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()
WITH_BODY = [o for o in OPERATIONS if o.takes_body]


def refused(
    api: Api, operation: Operation, objects: Objects, *, status: int = 400, **kw: Any
) -> tuple[int, str, str | None]:
    before = snapshot()
    response = api.request(operation.method, path_for(operation, objects), **kw)
    assert snapshot() == before, changes(before, snapshot())
    found = problem(response)
    assert found[0] == status, response.content[:300]
    return found


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_body_over_the_size_limit(api: Api, alices: Objects, operation: Operation) -> None:
    valid = json.dumps(body_for(operation, alices).value)
    padding = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1 - len(valid)
    raw = valid[:-1] + " " * padding + "}"
    assert len(raw.encode()) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    assert refused(api, operation, alices, raw=raw, status=413) == (
        413,
        "request_too_large",
        None,
    )


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_json_nested_ten_thousand_deep(api: Api, alices: Objects, operation: Operation) -> None:
    raw = '{"a":' * 10_000 + "1" + "}" * 10_000
    assert refused(api, operation, alices, raw=raw)[:2] == (400, "validation_error")


def bounded(schema: dict[str, Any] | None, path: tuple[str | int, ...] = ()) -> list[Any]:
    """(path, the bound, a value just past it) for every bound the schema declares."""
    if schema is None:
        return []
    found: list[Any] = []
    kind = schema.get("type")
    if kind == "object":
        for key, inner in schema.get("properties", {}).items():
            found += bounded(inner, (*path, key))
        if isinstance(schema.get("additionalProperties"), dict) and path:
            found.append((path, "keys", {f"k{n}": "v" for n in range(1_000)}))
    elif kind == "array":
        if "maxItems" in schema:
            found.append((path, "maxItems", None))  # filled in with copies of a valid item
        found += bounded(schema["items"], (*path, 0))
    elif kind == "string" and "maxLength" in schema and "enum" not in schema:
        found.append((path, "maxLength", "x" * (schema["maxLength"] + 1)))
    return found


BOUNDS = [
    (operation, path, bound, value)
    for operation in WITH_BODY
    for path, bound, value in bounded(operation.request)
]


@pytest.mark.parametrize(
    ("operation", "path", "bound", "value"),
    BOUNDS,
    ids=[f"{o} {pointer(p)} {b}" for o, p, b, _ in BOUNDS],
)
def test_a_field_past_its_bound(
    api: Api,
    alices: Objects,
    operation: Operation,
    path: tuple[str | int, ...],
    bound: str,
    value: Any,
) -> None:
    body = body_for(operation, alices).value
    if bound == "maxItems":
        schema: Any = operation.request
        for part in path:
            schema = schema["properties"][part] if isinstance(part, str) else schema["items"]
        item = example(schema["items"], str(path[-1]), alices)
        value = [item] * (schema["maxItems"] + 1)
    status, code, param = refused(api, operation, alices, body=with_value(body, path, value))
    assert (status, code) == (400, "validation_error")
    assert param is not None and param.startswith(pointer(path)), param


LISTS = [
    o for o in OPERATIONS if any(p["name"] == "limit" for p in o.parameters if p["in"] == "query")
]


@pytest.mark.parametrize("limit", ["101", "1000000000", "0", "-1", "1e3"])
@pytest.mark.parametrize("operation", LISTS, ids=str)
def test_a_page_past_the_largest_limit(
    api: Api, alices: Objects, operation: Operation, limit: str
) -> None:
    response = api.get(path_for(operation, alices), query={"limit": limit})
    assert problem(response) == (400, "validation_error", "limit")
