"""The request log shows an organization its own API requests, newest first, 50 a page,
filtered by status, path, method, time and mode; each error links to its entry in the
error docs; bad filters are shown as form errors, never a 500."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from oauth import services as identity
from payments.requestlog import request_log_flush
from tests.factories import log_request, make_user
from tests.portal.conftest import Cast, client_for, post


def shown_ids(response: Any) -> list[str]:
    """The request ids in the log's table, in the order shown."""
    return re.findall(r"<td><code>(req_[A-Za-z0-9_]+)</code></td>", response.content.decode())


def test_a_member_sees_the_organization_s_requests_newest_first(cast: Cast) -> None:
    older = log_request(cast.alice_org, ago=dt.timedelta(hours=2))
    newer = log_request(cast.alice_org, ago=dt.timedelta(minutes=5))
    for user in (cast.alice, cast.bob):
        response = client_for(user).get("/requests/")
        assert response.status_code == 200
        assert shown_ids(response) == [newer, older]


def test_each_row_shows_method_path_status_error_latency_and_mode(cast: Cast) -> None:
    log_request(
        cast.alice_org,
        method="POST",
        path="/v1/transfers",
        status=402,
        livemode=True,
        error_code="insufficient_funds",
    )
    page = client_for(cast.alice).get("/requests/").content.decode()
    assert "POST" in page and "<code>/v1/transfers</code>" in page
    assert '<span class="badge bad">402</span>' in page
    assert "12.5 ms" in page
    assert '<span class="badge ok">live</span>' in page


def test_an_error_code_links_to_its_entry_in_the_error_docs(cast: Cast) -> None:
    log_request(cast.alice_org, status=404, error_code="not_found")
    page = client_for(cast.alice).get("/requests/").content.decode()
    assert '<a href="/docs/errors#not_found"><code>not_found</code></a>' in page
    # …and the anchor exists on that page, as the API's problem `type` URLs expect.
    assert 'id="not_found"' in Client().get("/docs/errors").content.decode()


def test_the_credential_is_shown_by_key_prefix_and_last_four_or_oauth_app(cast: Cast) -> None:
    key = identity.api_key_create(organization=cast.alice_org, livemode=False).api_key
    app = identity.application_create(
        organization=cast.alice_org, name="Ledger Sync", redirect_uris=["https://sync.test/cb"]
    ).application
    log_request(cast.alice_org, credential_id=key.id)
    log_request(cast.alice_org, credential_id="tok_42", application_id=app.id)
    page = client_for(cast.alice).get("/requests/").content.decode()
    assert f"<code>{key.prefix}…{key.last4}</code>" in page
    assert "OAuth app Ledger Sync" in page


def test_charlie_never_sees_alice_s_requests(cast: Cast) -> None:
    alice_request = log_request(cast.alice_org)
    charlie_request = log_request(cast.charlie_org)
    response = client_for(cast.charlie).get("/requests/")
    assert shown_ids(response) == [charlie_request]
    assert alice_request not in response.content.decode()


def test_someone_without_an_organization_gets_404_and_anonymous_goes_to_login(
    cast: Cast,
) -> None:
    assert client_for(make_user("nomad")).get("/requests/").status_code == 404
    response = Client().get("/requests/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=2xx", {"ok"}),
        ("status=4xx", {"missing", "refused"}),
        ("status=5xx", {"broken"}),
        ("status=404", {"missing"}),
        ("status=4XX", {"missing", "refused"}),
        ("path=transfers", {"refused", "broken"}),
        ("method=POST", {"refused"}),
        ("mode=live", {"broken"}),
        ("mode=test", {"ok", "missing", "refused"}),
        ("status=4xx&path=accounts", {"missing"}),
    ],
)
def test_the_log_is_filtered_by_status_class_code_path_method_and_mode(
    cast: Cast, query: str, expected: set[str]
) -> None:
    made = {
        "ok": log_request(cast.alice_org, status=200),
        "missing": log_request(
            cast.alice_org, path="/v1/accounts/acct_x", status=404, error_code="not_found"
        ),
        "refused": log_request(
            cast.alice_org,
            method="POST",
            path="/v1/transfers",
            status=402,
            error_code="insufficient_funds",
        ),
        "broken": log_request(
            cast.alice_org,
            path="/v1/transfers",
            status=500,
            error_code="internal_error",
            livemode=True,
        ),
    }
    response = client_for(cast.alice).get(f"/requests/?{query}")
    assert response.status_code == 200
    assert set(shown_ids(response)) == {made[name] for name in expected}


def test_the_log_is_filtered_by_time_range(cast: Cast) -> None:
    now = timezone.now()
    log_request(cast.alice_org, ago=dt.timedelta(days=3))
    middle = log_request(cast.alice_org, ago=dt.timedelta(days=2))
    log_request(cast.alice_org, ago=dt.timedelta(hours=1))
    since = (now - dt.timedelta(days=2, hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client_for(cast.alice).get(f"/requests/?since={since}&until={until}")
    assert shown_ids(response) == [middle]
    page = response.content.decode()
    assert 'type="datetime-local"' in page and f'value="{since}"' in page


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("status=abc", "status", "Enter 2xx, 4xx, 5xx or a code from 100 to 599."),
        ("status=700", "status", "Enter 2xx, 4xx, 5xx or a code from 100 to 599."),
        ("status=%EF%BC%94%EF%BC%90%EF%BC%94", "status", "Enter 2xx, 4xx, 5xx"),  # full-width
        ("status=" + "9" * 50, "status", "at most 3 characters"),
        ("since=yesterday", "since", "Enter a valid date/time."),
        ("until=2024-13-45T99:99", "until", "Enter a valid date/time."),
        ("since=99999-01-01T00:00", "since", "Enter a valid date/time."),
        ("method=BREW", "method", "Select a valid choice."),
        ("mode=sideways", "mode", "Select a valid choice."),
        ("path=" + "x" * 500, "path", "at most 200 characters"),
        (
            "since=2025-01-02T00:00&until=2025-01-01T00:00",
            "until",
            "Choose a time after “From”.",
        ),
        ("cursor=not-a-cursor", "cursor", "This page link is not valid"),
        ("cursor=WyJ4IiwgMV0", "cursor", "This page link is not valid"),  # ["x", 1]
    ],
)
def test_bad_filter_values_are_shown_next_to_their_field_instead_of_failing(
    cast: Cast, query: str, field: str, message: str
) -> None:
    log_request(cast.alice_org)
    response = client_for(cast.alice).get(f"/requests/?{query}")
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    assert message in " ".join(form.errors[field])
    assert message in html.unescape(response.content.decode())
    assert shown_ids(response) == []


def test_a_field_error_sits_right_after_its_labelled_input(cast: Cast) -> None:
    page = client_for(cast.alice).get("/requests/?status=abc").content.decode()
    label = page.index('<label for="id_status">')
    field = page.index('id="id_status"', label)
    error = page.index('class="errorlist', field)
    assert label < field < error < page.index('<label for="id_path">')


def test_pages_hold_50_requests_and_link_to_the_older_ones(cast: Cast) -> None:
    made = [log_request(cast.alice_org, ago=dt.timedelta(seconds=120 - i)) for i in range(51)]
    newest_first = list(reversed(made))
    client = client_for(cast.alice)
    first = client.get("/requests/?status=2xx")
    assert shown_ids(first) == newest_first[:50]
    cursor = first.context["next_cursor"]
    assert cursor and f"status=2xx&amp;cursor={cursor}" in first.content.decode()
    second = client.get(f"/requests/?status=2xx&cursor={cursor}")
    assert shown_ids(second) == newest_first[50:]
    assert second.context["next_cursor"] == ""


def test_requests_logged_since_a_page_was_read_do_not_shift_the_next_page(cast: Cast) -> None:
    made = [log_request(cast.alice_org, ago=dt.timedelta(seconds=120 - i)) for i in range(51)]
    client = client_for(cast.alice)
    cursor = client.get("/requests/").context["next_cursor"]
    log_request(cast.alice_org, ago=dt.timedelta(0))
    assert shown_ids(client.get(f"/requests/?cursor={cursor}")) == [made[0]]


def test_rows_with_the_same_time_are_neither_skipped_nor_repeated(cast: Cast) -> None:
    moment = timezone.now() - dt.timedelta(minutes=3)
    made = [log_request(cast.alice_org, at=moment, flush=False) for _ in range(55)]
    request_log_flush()
    client = client_for(cast.alice)
    first = client.get("/requests/")
    second = client.get(f"/requests/?cursor={first.context['next_cursor']}")
    seen = shown_ids(first) + shown_ids(second)
    assert sorted(seen) == sorted(made)
    assert len(set(seen)) == 55


def test_the_log_changes_nothing_so_a_post_is_not_allowed(cast: Cast) -> None:
    assert post(client_for(cast.alice), "/requests/").status_code == 405
    assert client_for(cast.alice).post("/requests/").status_code == 403  # no CSRF token
