"""The dashboard shows an organization its balances, a quick start filled with its own
account ids, its latest requests and webhook deliveries, and a chart of the last 24
hours of requests and errors drawn on the server."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import types
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.models import Transfer
from oauth import services as identity
from payments import selectors as payments_read
from payments import services as payments
from payments import webhooks
from payments.models import Event
from tests.factories import log_request, make_user
from tests.portal.conftest import Cast, client_for, post


def accounts_of(organization_id: str) -> list[Any]:
    return payments_read.organization_accounts(organization_id=organization_id)


def chart_rows(page: str) -> list[tuple[str, int, int]]:
    """(hour, requests, errors) from the table that stands in for the chart."""
    table = page[page.index('<table class="chart-data">') :]
    table = table[: table.index("</table>")]
    return [
        (hour, int(requests), int(errors))
        for hour, requests, errors in re.findall(
            r'<time datetime="([^"]+)">[^<]*</time></th><td>(\d+)</td><td>(\d+)</td>', table
        )
    ]


# Access ------------------------------------------------------------------------------------


def test_alice_sees_her_balances_and_never_charlie_s_account_ids(cast: Cast) -> None:
    page = client_for(cast.alice).get("/").content.decode()
    for account in accounts_of(cast.alice_org.id):
        assert account.id in page
    assert "$10,000.00" in page and "€10,000.00" in page
    for account in accounts_of(cast.charlie_org.id):
        assert account.id not in page


def test_a_viewer_sees_the_dashboard_too(cast: Cast) -> None:
    response = client_for(cast.bob).get("/")
    assert response.status_code == 200
    assert accounts_of(cast.alice_org.id)[0].id in response.content.decode()


def test_charlie_sees_his_own_accounts_only(cast: Cast) -> None:
    page = client_for(cast.charlie).get("/").content.decode()
    assert all(a.id in page for a in accounts_of(cast.charlie_org.id))
    assert not any(a.id in page for a in accounts_of(cast.alice_org.id))


def test_anonymous_is_sent_to_login_and_someone_without_organization_gets_404(
    cast: Cast,
) -> None:
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client_for(make_user("nomad")).get("/").status_code == 404


def test_the_dashboard_changes_nothing_so_a_post_is_not_allowed(cast: Cast) -> None:
    assert post(client_for(cast.alice), "/").status_code == 405
    assert client_for(cast.alice).post("/").status_code == 403  # no CSRF token


def test_balances_are_written_the_reader_s_way_in_chinese(cast: Cast) -> None:
    client = client_for(cast.alice)
    page = client.get("/", headers={"accept-language": "zh-hans"}).content.decode()
    assert '<html lang="zh-hans">' in page
    assert "US$10,000.00" in page


def test_available_and_held_amounts_are_both_shown(cast: Cast) -> None:
    usd = next(a for a in accounts_of(cast.alice_org.id) if a.currency_id == "USD")
    other = payments.sandbox_open(holder=cast.alice_org.id, currencies=("USD",))[0]
    from ledger import services as ledger

    payments.transfer_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=usd.id, destination_id=other.id, amount=2550, currency="USD"
        ),
    )
    page = client_for(cast.alice).get("/").content.decode()
    assert "$9,974.50" in page  # available
    assert "$25.50" in page  # held by the pending transfer


# Quick start -----------------------------------------------------------------------------


def test_the_quick_start_uses_the_real_account_ids_base_url_and_key_placeholder(
    cast: Cast,
) -> None:
    response = client_for(cast.alice).get("/")
    quickstart = response.context["quickstart"]
    usd = next(a for a in accounts_of(cast.alice_org.id) if a.currency_id == "USD")
    for snippet in (quickstart.curl, quickstart.python):
        assert "http://testserver" in snippet
        assert "OPENPAY_API_KEY" in snippet
        assert usd.id in snippet
        assert "sk_test_" not in snippet  # never a real key, nor a fake one to overwrite it
    assert "Bearer $OPENPAY_API_KEY" in quickstart.curl
    page = response.content.decode()
    assert 'data-copy="#quickstart-curl"' in page and 'id="quickstart-curl"' in page
    assert "developers/portal.js" in page


def test_the_keys_that_exist_are_named_by_prefix_and_last_four_and_never_shown_whole(
    cast: Cast,
) -> None:
    issued = identity.api_key_create(organization=cast.alice_org, livemode=False, name="CI")
    revoked = identity.api_key_create(organization=cast.alice_org, livemode=False)
    identity.api_key_revoke(api_key=revoked.api_key)
    charlie_key = identity.api_key_create(organization=cast.charlie_org, livemode=False)
    page = client_for(cast.alice).get("/").content.decode()
    assert issued.api_key.redacted in page
    assert issued.secret not in page
    assert revoked.api_key.redacted not in page
    assert charlie_key.api_key.redacted not in page
    assert "stored hashed" in page
    assert 'href="/keys/"' in page


class _Response:
    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self._body = response.content

    def json(self) -> Any:
        return json.loads(self._body)


def requests_over(client: Client) -> types.ModuleType:
    """A stand-in for the `requests` package that sends to the API in this process, so the
    snippet runs against the test database exactly as pasted."""

    class Session:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

        def get(self, url: str, headers: dict[str, str] | None = None) -> _Response:
            return _Response(
                client.get(urlsplit(url).path, headers={**self.headers, **(headers or {})})
            )

        def post(
            self, url: str, json: Any = None, headers: dict[str, str] | None = None
        ) -> _Response:
            return _Response(
                client.post(
                    urlsplit(url).path,
                    data=_dumps(json),
                    content_type="application/json",
                    headers={**self.headers, **(headers or {})},
                )
            )

    module = types.ModuleType("requests")
    module.Session = Session  # type: ignore[attr-defined]
    return module


def _dumps(value: Any) -> str:
    return json.dumps(value)


@pytest.mark.parametrize("second_usd_account", [False, True])
def test_the_python_quick_start_runs_as_pasted_and_makes_a_pending_transfer(
    cast: Cast,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    second_usd_account: bool,
) -> None:
    if second_usd_account:
        payments.sandbox_open(holder=cast.alice_org.id, currencies=("USD",))
    key = identity.api_key_create(organization=cast.alice_org, livemode=False).secret
    snippet = client_for(cast.alice).get("/").context["quickstart"].python
    monkeypatch.setenv("OPENPAY_API_KEY", key)
    monkeypatch.setitem(sys.modules, "requests", requests_over(Client()))
    exec(snippet, {"__name__": "quickstart"})  # noqa: S102 -- the page's own snippet
    transfer = Transfer.objects.get(holder=cast.alice_org.id)
    assert (transfer.amount, transfer.currency_id, transfer.status) == (1000, "USD", "pending")
    assert f"{transfer.id} pending" in capsys.readouterr().out
    assert Event.objects.filter(type="transfer.created", organization=cast.alice_org).exists()
    usd_accounts = [a for a in accounts_of(cast.alice_org.id) if a.currency_id == "USD"]
    assert len(usd_accounts) == 2  # the snippet opened one only when there was none


def test_the_curl_quick_start_is_valid_shell(cast: Cast) -> None:
    snippet = client_for(cast.alice).get("/").context["quickstart"].curl
    checked = subprocess.run(["bash", "-n"], input=snippet, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert "Idempotency-Key" in snippet and "/v1/transfers" in snippet


def test_without_test_accounts_the_quick_start_still_lists_accounts(cast: Cast) -> None:
    lonely = make_user("lonely")
    identity.organization_create(name="Empty Co", owner=lonely)
    response = client_for(lonely).get("/")
    assert response.status_code == 200
    assert "/v1/accounts" in response.context["quickstart"].curl
    assert "Your organization has no accounts yet." in response.content.decode()


# Recent activity -------------------------------------------------------------------------


def test_the_last_10_requests_are_listed_newest_first(cast: Cast) -> None:
    for minutes in range(12, 0, -1):
        log_request(
            cast.alice_org,
            path=f"/v1/accounts/acct_{minutes:02d}",
            ago=dt.timedelta(minutes=minutes),
        )
    log_request(cast.charlie_org, path="/v1/accounts/acct_charlie")
    page = client_for(cast.alice).get("/").content.decode()
    shown = re.findall(r"<code>/v1/accounts/acct_(\w+)</code>", page)
    assert shown == [f"{m:02d}" for m in range(1, 11)]


def test_the_last_webhook_deliveries_show_endpoint_event_and_status(cast: Cast) -> None:
    from ledger import services as ledger

    endpoint = webhooks.webhook_endpoint_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        url="https://hooks.alice.example/openpay",
        enabled_events=["*"],
    )
    webhooks.webhook_endpoint_create(
        organization_id=cast.charlie_org.id,
        livemode=False,
        url="https://hooks.charlie.example/openpay",
        enabled_events=["*"],
    )
    usd = next(a for a in accounts_of(cast.alice_org.id) if a.currency_id == "USD")
    other = payments.sandbox_open(holder=cast.alice_org.id, currencies=("USD",))[0]
    payments.transfer_create(
        organization_id=cast.alice_org.id,
        livemode=False,
        spec=ledger.TransferSpec(
            source_id=usd.id, destination_id=other.id, amount=100, currency="USD"
        ),
    )
    page = client_for(cast.alice).get("/").content.decode()
    assert endpoint.url in page and "transfer.created" in page
    assert '<span class="badge wait">pending</span>' in page
    assert "hooks.charlie.example" not in page


# The chart -------------------------------------------------------------------------------


def test_the_chart_counts_the_last_hour_s_requests_and_errors_and_leaves_out_older_ones(
    cast: Cast,
) -> None:
    log_request(cast.alice_org, ago=dt.timedelta(seconds=1))
    log_request(cast.alice_org, ago=dt.timedelta(seconds=2))
    log_request(cast.alice_org, status=404, error_code="not_found", ago=dt.timedelta(seconds=3))
    log_request(cast.alice_org, status=500, ago=dt.timedelta(hours=25))  # a day ago
    log_request(cast.charlie_org, status=500, ago=dt.timedelta(seconds=1))
    response = client_for(cast.alice).get("/")
    rows = chart_rows(response.content.decode())
    assert len(rows) == 24
    current_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    assert rows[-1][0] == current_hour.isoformat()
    # Seconds ago can be the hour before, when the test runs just after the hour.
    assert (rows[-1][1] + rows[-2][1], rows[-1][2] + rows[-2][2]) == (3, 1)
    assert all((requests, errors) == (0, 0) for _, requests, errors in rows[:-2])
    chart = response.context["chart"]
    assert (chart.total_requests, chart.total_errors) == (3, 1)


def test_the_chart_is_an_accessible_inline_svg_with_two_series_and_axis_labels(
    cast: Cast,
) -> None:
    log_request(cast.alice_org, ago=dt.timedelta(hours=2))
    log_request(cast.alice_org, status=400, ago=dt.timedelta(hours=2))
    page = client_for(cast.alice).get("/").content.decode()
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'role="img"' in svg and 'aria-labelledby="chart-title chart-desc"' in svg
    assert '<title id="chart-title">' in svg
    assert "2 requests and 1 errors" in svg
    assert svg.count('fill="#b42318"/>') == 2  # the legend's and the one hour with an error
    assert re.search(r">\d\d:00</text>", svg)  # hour labels on the x axis
    assert ">2</text>" in svg  # the top of the y axis
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_hourly_counts_come_from_one_grouped_query(cast: Cast) -> None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for index, status in enumerate((200, 302, 400, 500, 201)):
        log_request(
            cast.alice_org, status=status, ago=now - (hour - dt.timedelta(minutes=50 - index))
        )
    log_request(cast.alice_org, ago=now - (hour - dt.timedelta(hours=3, minutes=50)))
    log_request(cast.charlie_org, ago=now - (hour - dt.timedelta(minutes=50)))
    since = hour - dt.timedelta(hours=23)
    with CaptureQueriesContext(connection) as queries:
        counts = payments_read.request_counts_by_hour(
            organization_id=cast.alice_org.id, since=since
        )
    assert len(queries) == 1 and "GROUP BY" in queries[0]["sql"].upper()
    assert [(c.hour, c.requests, c.errors) for c in counts] == [
        (hour - dt.timedelta(hours=4), 1, 0),
        (hour - dt.timedelta(hours=1), 5, 2),
    ]
