"""Not attacks: the request each attack starts from succeeds for its owner. Without
this, a refusal elsewhere could be a broken request rather than a defence."""

from __future__ import annotations

import pytest

from oauth import services as identity
from tests.api.support import OpenApi, Party
from tests.attacks.support import Api, Objects, Operation, body_for, catalogue, path_for

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_the_owner_may(api: Api, alices: Objects, operation: Operation) -> None:
    response = api.request(
        operation.method, path_for(operation, alices), body_for(operation, alices).value
    )
    assert response.status_code == operation.success, response.content[:500]


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_key_with_only_the_declared_scope_may(
    openapi: OpenApi, alice: Party, alices: Objects, operation: Operation
) -> None:
    assert operation.scope is not None
    key = identity.api_key_create(
        organization=alice.organization, livemode=False, scopes=[operation.scope]
    ).secret
    response = Api(openapi, key).request(
        operation.method, path_for(operation, alices), body_for(operation, alices).value
    )
    assert response.status_code == operation.success, response.content[:500]


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_an_oauth_token_on_the_shared_accounts_may(
    app: Api, granted: Objects, operation: Operation
) -> None:
    """The application alice granted every scope on her `alices` accounts, with the
    endpoint made under its grant: the attacks with its token on accounts she did not
    share, or on her own endpoints, are refused for that reason alone."""
    response = app.request(
        operation.method, path_for(operation, granted), body_for(operation, granted).value
    )
    assert response.status_code == operation.success, response.content[:500]
