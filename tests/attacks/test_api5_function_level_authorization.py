"""API5, broken function level authorization: an operation needs the one scope its
schema declares — a restricted key or an OAuth token with every other scope is `403
insufficient_scope`, decided before the request is read — and a method a path does not
document is `405`, never served. (That the declared scope suffices is in
test_baseline.py.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from oauth import services as identity
from oauth.models import Scope
from tests.api.support import OpenApi, Party, problem
from tests.attacks.conftest import World
from tests.attacks.support import (
    METHODS,
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    filled,
    oauth_token,
    path_for,
    served_schema,
    snapshot,
)

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()


def refused_for_scope(api: Api, operation: Operation, objects: Objects) -> None:
    before = snapshot()
    response = api.request(
        operation.method, path_for(operation, objects), body_for(operation, objects).value
    )
    assert problem(response) == (403, "insufficient_scope", None), response.content[:300]
    assert response.json()["detail"] == f"This credential lacks the `{operation.scope}` scope."
    assert snapshot() == before, changes(before, snapshot())


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_restricted_key_with_every_other_scope(
    openapi: OpenApi, alice: Party, alices: Objects, operation: Operation
) -> None:
    others = [scope for scope in Scope.values if scope != operation.scope]
    key = identity.api_key_create(
        organization=alice.organization, livemode=False, scopes=others
    ).secret
    refused_for_scope(Api(openapi, key), operation, alices)


_vendors = itertools.count()


@pytest.fixture(scope="module")
def tokens_lacking(world: World, django_db_blocker: Any) -> Iterator[dict[str, str]]:
    """For each scope, an OAuth token alice granted every other scope (on her `alices`
    accounts), each to its own application."""
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=hashers):
        yield {
            missing: oauth_token(
                user=world.alice.user,
                organization=world.alice.organization,
                account_ids=[world.alices.account, world.alices.payee],
                scopes=[scope for scope in Scope.values if scope != missing],
                vendor=f"vendor{next(_vendors)}",
            )
            for missing in Scope.values
        }


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_an_oauth_token_with_every_other_scope(
    openapi: OpenApi,
    tokens_lacking: dict[str, str],
    alices: Objects,
    operation: Operation,
    db: None,
) -> None:
    assert operation.scope is not None
    refused_for_scope(Api(openapi, tokens_lacking[operation.scope]), operation, alices)


UNDOCUMENTED = [
    (template, method.upper())
    for template, item in served_schema()["paths"].items()
    if template.startswith("/v1/")
    for method in METHODS
    if method not in item
]


@pytest.mark.parametrize(
    ("template", "method"), UNDOCUMENTED, ids=[f"{m} {t}" for t, m in UNDOCUMENTED]
)
def test_a_method_the_path_does_not_document(
    api: Api, alices: Objects, template: str, method: str
) -> None:
    before = snapshot()
    response = api.request(method, filled(template, alices), {})
    assert problem(response) == (405, "method_not_allowed", None), response.content[:300]
    assert "Allow" in response.headers
    assert snapshot() == before, changes(before, snapshot())
