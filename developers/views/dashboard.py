"""The page a developer lands on after signing in: their balances, a quick start filled
with their own account ids, what their integration did lately, and the last 24 hours
of requests as a chart drawn on the server."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_safe

from developers.portal import Seat, member_view
from ledger import selectors as books
from ledger.models import Account
from payments import selectors as payments_read

CHART_HOURS = 24


@member_view()
@require_safe
def home(request: HttpRequest, seat: Seat) -> HttpResponse:
    organization_id = seat.organization.id
    now = timezone.now()
    since = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=CHART_HOURS - 1)
    accounts = payments_read.organization_accounts(organization_id=organization_id)
    counts = payments_read.request_counts_by_hour(organization_id=organization_id, since=since)
    return render(
        request,
        "developers/home.html",
        {
            "accounts": accounts,
            "api_keys": payments_read.api_keys_active(organization_id=organization_id),
            "quickstart": quickstart(request.build_absolute_uri("/").rstrip("/"), accounts),
            "recent_requests": payments_read.requests_recent(organization_id=organization_id),
            "deliveries": payments_read.deliveries_recent(organization_id=organization_id),
            "chart": chart(since, counts),
        },
    )


# Quick start -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuickStart:
    curl: str
    python: str
    source: Account | None  # the account the snippets read and pay from
    amount: int  # what the snippets' transfer moves, in minor units


def quickstart(base_url: str, accounts: list[Account]) -> QuickStart:
    """Snippets that run as pasted once OPENPAY_API_KEY is set: they read a real test
    account and pay ten units of its currency into another one, opening that one first
    when the organization has no second account in the currency."""
    usable = sorted(
        (a for a in accounts if not a.livemode and a.status == "open"),
        key=lambda a: (a.currency_id != "USD", a.currency_id, -a.available),
    )
    auth = "Authorization: Bearer $OPENPAY_API_KEY"
    setup = f'BASE={base_url}\n\ncurl $BASE/v1/accounts -H "{auth}"'
    python_setup = (
        "import os\nimport uuid\n\nimport requests\n\n"
        f'BASE = "{base_url}"\n'
        "api = requests.Session()\n"
        'api.headers["Authorization"] = f"Bearer {os.environ[\'OPENPAY_API_KEY\']}"\n\n'
        'print(api.get(f"{BASE}/v1/accounts").json())'
    )
    if not usable:
        return QuickStart(curl=setup, python=python_setup, source=None, amount=0)
    source = usable[0]
    currency = source.currency_id
    amount = 10 * 10 ** books.currency_exponents()[currency]
    partner = next((a for a in usable if a.currency_id == currency and a.id != source.id), None)
    new_account = f'{{"currency": "{currency}", "name": "Payouts"}}'
    if partner is not None:
        curl_destination = f"DESTINATION={partner.id}"
        python_destination = f'destination = "{partner.id}"'
    else:
        curl_destination = (
            f'DESTINATION=$(curl -s $BASE/v1/accounts -H "{auth}" \\\n'
            f"     -H \"Content-Type: application/json\" -d '{new_account}' \\\n"
            "     | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"id\"])')"
        )
        python_destination = (
            f'destination = api.post(f"{{BASE}}/v1/accounts", json={new_account}).json()["id"]'
        )
    curl = (
        f"{setup}\n"
        f'curl $BASE/v1/accounts/{source.id}/balance -H "{auth}"\n\n'
        f"{curl_destination}\n"
        f'curl $BASE/v1/transfers -H "{auth}" \\\n'
        '     -H "Content-Type: application/json" -H "Idempotency-Key: $(uuidgen)" \\\n'
        "     -d @- <<JSON\n"
        f'{{"source_account": "{source.id}", "destination_account": "$DESTINATION",\n'
        f' "amount": {amount}, "currency": "{currency}"}}\n'
        "JSON"
    )
    python = (
        f"{python_setup}\n"
        f'print(api.get(f"{{BASE}}/v1/accounts/{source.id}/balance").json())\n\n'
        f"{python_destination}\n"
        "transfer = api.post(\n"
        '    f"{BASE}/v1/transfers",\n'
        '    headers={"Idempotency-Key": str(uuid.uuid4())},\n'
        f'    json={{"source_account": "{source.id}", "destination_account": destination,\n'
        f'          "amount": {amount}, "currency": "{currency}"}},\n'
        ").json()\n"
        'print(transfer["id"], transfer["status"])'
    )
    return QuickStart(curl=curl, python=python, source=source, amount=amount)


# The chart ---------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 28, 28
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
SLOT = PLOT_WIDTH / CHART_HOURS
BAR = SLOT * 0.4


@dataclass(frozen=True)
class ChartHour:
    start: dt.datetime
    requests: int
    errors: int
    x: float  # the left edge of the hour's pair of bars
    requests_y: float
    requests_height: float
    errors_x: float
    errors_y: float
    errors_height: float
    label: str  # "HH:00" under every third hour, else ""


@dataclass(frozen=True)
class Chart:
    hours: list[ChartHour]
    top: int  # the value at the top of the y axis
    total_requests: int
    total_errors: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    plot_top: int = TOP
    baseline: int = HEIGHT - BOTTOM
    label_y: int = HEIGHT - 8
    bar_width: float = BAR

    @property
    def middle(self) -> int | None:
        """A gridline halfway up, when it falls on a whole number."""
        return self.top // 2 if self.top % 2 == 0 else None

    @property
    def middle_y(self) -> float:
        return TOP + PLOT_HEIGHT / 2


def chart(since: dt.datetime, counts: list[payments_read.HourlyCount]) -> Chart:
    """Bar geometry for `CHART_HOURS` hours from `since`, hours without requests at 0."""
    by_hour = {count.hour: count for count in counts}
    top = _nice_ceiling(max((count.requests for count in counts), default=0))
    hours = []
    for index in range(CHART_HOURS):
        start = since + dt.timedelta(hours=index)
        count = by_hour.get(start)
        requests, errors = (count.requests, count.errors) if count else (0, 0)
        x = LEFT + index * SLOT + (SLOT - 2 * BAR) / 2
        requests_height = PLOT_HEIGHT * requests / top
        errors_height = PLOT_HEIGHT * errors / top
        hours.append(
            ChartHour(
                start=start,
                requests=requests,
                errors=errors,
                x=round(x, 2),
                requests_y=round(HEIGHT - BOTTOM - requests_height, 2),
                requests_height=round(requests_height, 2),
                errors_x=round(x + BAR, 2),
                errors_y=round(HEIGHT - BOTTOM - errors_height, 2),
                errors_height=round(errors_height, 2),
                label=start.strftime("%H:00") if index % 3 == 0 else "",
            )
        )
    return Chart(
        hours=hours,
        top=top,
        total_requests=sum(hour.requests for hour in hours),
        total_errors=sum(hour.errors for hour in hours),
    )


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50… that is at least `value`, so that the axis
    reads in round numbers."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


urlpatterns = [path("", home, name="home")]
