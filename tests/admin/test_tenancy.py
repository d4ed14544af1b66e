"""Each merchant's staff see and act on their own books only: every list, search,
filter, autocomplete, change page and action of the admin is scoped to the staff
member's organizations, and another organization's row is a 404."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from ledger.models import TransferStatus
from oauth.models import Role
from tests.admin.conftest import MODELS, Cast, post, row_of, shows, text, verified_client
from tests.factories import add_member, make_organization

pytestmark = pytest.mark.django_db


def leaked(page: str, cast: Cast) -> list[str]:
    return [row_id for row_id in cast.bob_books.ids() if shows(page, row_id)]


@pytest.mark.parametrize("model", MODELS)
def test_a_list_shows_alices_rows_and_none_of_bobs(cast: Cast, model: str) -> None:
    response = verified_client(cast.alice).get(f"/admin/{model}/")
    assert response.status_code == 200
    assert shows(text(response), row_of(model, cast.alice_books))
    assert leaked(text(response), cast) == []


@pytest.mark.parametrize("model", MODELS)
def test_searching_for_bobs_rows_finds_nothing(cast: Cast, model: str) -> None:
    client = verified_client(cast.alice)
    for term in (row_of(model, cast.bob_books), "bob"):
        response = client.get(f"/admin/{model}/", {"q": term})
        assert response.status_code == 200
        # The search box repeats the term; nothing else of bob's may be on the page.
        assert leaked(text(response).replace(term, ""), cast) == []


@pytest.mark.parametrize("model", MODELS)
def test_every_filter_of_a_list_shows_none_of_bobs_rows(cast: Cast, model: str) -> None:
    client = verified_client(cast.alice)
    page = text(client.get(f"/admin/{model}/"))
    links = set(re.findall(r'href="(\?[^"]+)"', page))
    assert links, "the list offers filters or sorting"
    for link in links:
        response = client.get(f"/admin/{model}/{link.replace('&amp;', '&')}")
        assert response.status_code in (200, 302)
        assert leaked(text(response), cast) == [], link


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_bobs_rows_are_not_found_by_alices_staff(cast: Cast, model: str, page: str) -> None:
    client = verified_client(cast.alice)
    response = client.get(f"/admin/{model}/{row_of(model, cast.bob_books)}/{page}/")
    assert response.status_code == 404
    assert leaked(text(response), cast) == []


@pytest.mark.parametrize("model", MODELS)
def test_bob_sees_his_rows_and_none_of_alices(cast: Cast, model: str) -> None:
    response = verified_client(cast.bob).get(f"/admin/{model}/")
    assert response.status_code == 200
    assert shows(text(response), row_of(model, cast.bob_books))
    assert not [row for row in cast.alice_books.ids() if shows(text(response), row)]


def test_the_account_filter_offers_only_alices_accounts(cast: Cast) -> None:
    page = text(verified_client(cast.alice).get("/admin/ledger/entry/"))
    assert cast.alice_books.usd.id in page and cast.alice_books.payee.id in page
    assert cast.bob_books.usd.id not in page


def test_the_organization_filter_offers_only_alices_organizations(cast: Cast) -> None:
    client = verified_client(cast.alice)
    assert "By organization" not in text(client.get("/admin/ledger/transfer/")), "one: no choice"
    add_member(make_organization("Carol Co"), cast.alice, Role.VIEWER)
    page = text(client.get("/admin/ledger/transfer/"))
    assert "Alice Ltd" in page and "Carol Co" in page
    assert "Bob Books" not in page and cast.bob_books.organization.id not in page


def autocomplete(client: Client, model: str, field: str, term: str = "") -> list[str]:
    app_label, model_name = model.split("/")
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": app_label, "model_name": model_name, "field_name": field, "term": term},
    )
    assert response.status_code == 200
    return [result["id"] for result in json.loads(response.content)["results"]]


def test_autocomplete_offers_only_alices_rows(cast: Cast) -> None:
    client = verified_client(cast.alice)
    accounts = autocomplete(client, "ledger/transfer", "source")
    assert set(accounts) == {
        cast.alice_books.usd.id,
        cast.alice_books.eur.id,
        cast.alice_books.payee.id,
    }
    assert autocomplete(client, "ledger/transfer", "source", cast.bob_books.usd.id) == []
    assert autocomplete(client, "oauth/membership", "organization") == [
        cast.alice_books.organization.id
    ]


def test_an_action_on_bobs_transfer_is_refused_and_changes_nothing(cast: Cast) -> None:
    client = verified_client(cast.alice)
    response = post(
        client,
        "/admin/ledger/transfer/",
        {"action": "void", "_selected_action": [cast.bob_books.pending.id], "confirm": "yes"},
    )
    assert response.status_code == 302
    cast.bob_books.pending.refresh_from_db()
    assert cast.bob_books.pending.status == TransferStatus.PENDING


def test_an_action_on_alices_and_bobs_transfers_together_changes_neither(cast: Cast) -> None:
    client = verified_client(cast.alice)
    selected = [cast.alice_books.pending.id, cast.bob_books.pending.id]
    response = post(
        client,
        "/admin/ledger/transfer/",
        {"action": "void", "_selected_action": selected, "confirm": "yes"},
    )
    assert response.status_code == 302
    messages = text(client.get(response["Location"]))
    assert "not every selected row is yours" in messages
    for books in (cast.alice_books, cast.bob_books):
        books.pending.refresh_from_db()
        assert books.pending.status == TransferStatus.PENDING


def test_an_action_across_every_row_of_a_list_is_refused(cast: Cast) -> None:
    client = verified_client(cast.alice)
    response = post(
        client,
        "/admin/ledger/transfer/",
        {
            "action": "void",
            "_selected_action": [cast.alice_books.pending.id],
            "select_across": "1",
            "confirm": "yes",
        },
    )
    assert response.status_code == 302
    cast.alice_books.pending.refresh_from_db()
    assert cast.alice_books.pending.status == TransferStatus.PENDING


def test_the_export_of_bobs_account_is_not_found_by_alices_staff(cast: Cast) -> None:
    client = verified_client(cast.alice)
    url = f"/admin/ledger/account/{cast.bob_books.usd.id}/export/"
    assert client.get(url).status_code == 404
    assert client.get(url, {"start": "2000-01-01", "end": "2100-01-01"}).status_code == 404


def test_a_superuser_sees_every_organizations_rows(cast: Cast) -> None:
    page = text(verified_client(cast.root).get("/admin/ledger/transfer/"))
    assert cast.alice_books.settled.id in page and cast.bob_books.settled.id in page


def test_staff_without_an_organization_see_nothing(cast: Cast) -> None:
    client = verified_client(cast.drifter)
    home = client.get("/admin/")
    assert home.status_code == 200
    assert "not a member of any organization" in text(home)
    assert "/admin/ledger/" not in text(home)
    for model in MODELS:
        assert client.get(f"/admin/{model}/").status_code == 403, model
    assert client.get(
        f"/admin/ledger/transfer/{cast.alice_books.settled.id}/change/"
    ).status_code in (
        403,
        404,
    )


def test_a_viewer_sees_the_books_but_is_offered_no_money_action(cast: Cast) -> None:
    page = text(verified_client(cast.avery).get("/admin/ledger/transfer/"))
    assert cast.alice_books.settled.id in page
    assert 'value="refund"' not in page and 'value="void"' not in page
    owner_page = text(verified_client(cast.alice).get("/admin/ledger/transfer/"))
    assert 'value="refund"' in owner_page and 'value="void"' in owner_page


def test_a_viewers_refund_changes_nothing(cast: Cast) -> None:
    client = verified_client(cast.avery)
    post(
        client,
        "/admin/ledger/transfer/",
        {
            "action": "refund",
            "_selected_action": [cast.alice_books.settled.id],
            "confirm": "yes",
            "reason": "customer asked",
        },
    )
    cast.alice_books.settled.refresh_from_db()
    assert cast.alice_books.settled.status == TransferStatus.SETTLED


@pytest.mark.parametrize(
    ("user", "allowed"),
    [("avery", False), ("dev", True), ("alice", True)],
)
def test_credentials_are_listed_for_developers_and_up(cast: Cast, user: str, allowed: bool) -> None:
    client = verified_client(getattr(cast, user))
    for model in ("oauth/apikey", "oauth/application"):
        assert client.get(f"/admin/{model}/").status_code == (200 if allowed else 403)
    key = client.get(f"/admin/oauth/apikey/{cast.alice_books.api_key.id}/change/")
    assert key.status_code == (200 if allowed else 404)


@pytest.mark.parametrize(
    "page",
    [
        "/admin/oauth/user/",
        "/admin/auth/group/",
        "/admin/oauth2_provider/accesstoken/",
        "/admin/oauth2_provider/refreshtoken/",
        "/admin/oauth2_provider/grant/",
        "/admin/otp_totp/totpdevice/",
        "/admin/axes/accessattempt/",
    ],
)
def test_the_platforms_own_pages_are_for_superusers_only(cast: Cast, page: str) -> None:
    assert verified_client(cast.alice).get(page).status_code == 403
    assert verified_client(cast.root).get(page).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(cast: Cast) -> None:
    response = Client().get(f"/admin/ledger/transfer/{cast.alice_books.settled.id}/change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
