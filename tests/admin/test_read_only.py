"""No admin page changes a balance or an entry: the books, events and deliveries are
read-only for everyone, platform superusers included. Money moves only through the
actions (tests/admin/test_money_actions.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.models import Account, Entry, Transfer
from tests.admin.conftest import Cast, post, row_of, text, verified_client

pytestmark = pytest.mark.django_db

READ_ONLY = [
    "ledger/account",
    "ledger/transfer",
    "ledger/entry",
    "payments/event",
    "payments/webhookendpoint",
    "payments/webhookdelivery",
    "oauth/auditentry",
]


def books(cast: Cast) -> list[Any]:
    """Everything that could have been changed, as it stands."""
    return [
        list(Account.objects.order_by("id").values()),
        list(Transfer.objects.order_by("id").values()),
        list(Entry.objects.order_by("id").values()),
    ]


@pytest.mark.parametrize("user", ["root", "alice"])
@pytest.mark.parametrize("model", READ_ONLY)
def test_a_change_page_shows_the_row_without_a_form_to_save(
    cast: Cast, user: str, model: str
) -> None:
    response = verified_client(getattr(cast, user)).get(
        f"/admin/{model}/{row_of(model, cast.alice_books)}/change/"
    )
    assert response.status_code == 200
    assert 'name="_save"' not in text(response)
    assert 'name="_continue"' not in text(response)


@pytest.mark.parametrize("model", READ_ONLY)
def test_posting_to_a_change_page_is_refused_and_changes_nothing(cast: Cast, model: str) -> None:
    client = verified_client(cast.root)
    before = books(cast)
    response = post(
        client,
        f"/admin/{model}/{row_of(model, cast.alice_books)}/change/",
        {
            "posted": "999999999",
            "held": "0",
            "balance_after": "999999999",
            "amount": "1",
            "status": "settled",
            "name": "Changed",
            "_save": "Save",
        },
    )
    assert response.status_code == 403
    assert books(cast) == before


@pytest.mark.parametrize("model", READ_ONLY)
def test_nothing_is_added_or_deleted_through_the_admin(cast: Cast, model: str) -> None:
    client = verified_client(cast.root)
    before = books(cast)
    assert client.get(f"/admin/{model}/add/").status_code == 403
    assert post(client, f"/admin/{model}/add/", {"amount": "1"}).status_code == 403
    delete = f"/admin/{model}/{row_of(model, cast.alice_books)}/delete/"
    assert client.get(delete).status_code == 403
    assert post(client, delete, {"post": "yes"}).status_code == 403
    assert books(cast) == before


def test_no_list_offers_a_bulk_delete(cast: Cast) -> None:
    client = verified_client(cast.root)
    for model in [*READ_ONLY, "oauth/apikey", "oauth/application", "oauth/membership"]:
        assert 'value="delete_selected"' not in text(client.get(f"/admin/{model}/")), model


def test_a_bulk_delete_posted_anyway_changes_nothing(cast: Cast) -> None:
    client = verified_client(cast.root)
    before = books(cast)
    post(
        client,
        "/admin/ledger/entry/",
        {
            "action": "delete_selected",
            "_selected_action": list(Entry.objects.values_list("id", flat=True)),
            "post": "yes",
        },
    )
    assert books(cast) == before
