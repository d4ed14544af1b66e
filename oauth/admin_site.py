"""The admin site itself: who may enter (staff, with a verified authenticator when
ADMIN_REQUIRE_TWO_FACTOR is on), and the merchant's home page (balances and the last
30 days of volume of the organizations the staff member belongs to).

config/urls.py turns Django's default site into this class, so every registration made
with @admin.register, ours and third parties', lands here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from ledger.models import Account, AccountKind, Transfer
from oauth.admin_support import PlatformAdmin, TenantAdmin, access_for, money
from oauth.models import Organization, Role, User

VOLUME_DAYS = 30
HOME_ACCOUNTS = 200  # per page of the home: the accounts list has the rest


# The code was missing or no authenticator was chosen: nothing was guessed.
OTP_NOT_TRIED = {"token_required", "device_required"}


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Password and the authenticator's code on one page. With one authenticator (the
    usual case) it is the one checked; someone with several picks one after the first
    try, as django-otp's own form asks."""

    def clean(self) -> dict[str, Any]:
        try:
            cleaned: dict[str, Any] = super().clean()
        except ValidationError as error:
            if self.user_cache is not None and error.code not in OTP_NOT_TRIED:
                # The password was right but the code was wrong (or django-otp refused to
                # check it while throttled): a failed login for django-axes, like a wrong
                # password, so guessing codes locks the username and address out too.
                user_login_failed.send(
                    sender=type(self),
                    credentials={"username": self.cleaned_data.get("username")},
                    request=self.request,
                )
            raise
        return cleaned

    def _chosen_device(self, user: User) -> Any:
        chosen = super()._chosen_device(user)
        if chosen is None:
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                return devices[0]
        return chosen


class OpenPayAdminSite(OTPAdminSite):
    site_title = _("OpenPay admin")
    index_title = _("Your books")
    index_template = "admin/openpay/index.html"

    # ADMIN_REQUIRE_TWO_FACTOR is read on every request, not once at start-up, so the
    # tests can turn it on and off.
    @property
    def login_form(self) -> type[AuthenticationForm]:
        return AdminLoginForm if settings.ADMIN_REQUIRE_TWO_FACTOR else AdminAuthenticationForm

    @property
    def login_template(self) -> str:
        return "admin/openpay/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if settings.ADMIN_REQUIRE_TWO_FACTOR:
            # Active staff who signed in with a confirmed authenticator (django-otp).
            return bool(super().has_permission(request))
        return bool(admin.AdminSite.has_permission(self, request))

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context: dict[str, Any] = super().each_context(request)
        context["two_factor_required"] = settings.ADMIN_REQUIRE_TWO_FACTOR
        return context

    def get_urls(self) -> list[URLResolver | URLPattern]:
        self.make_safe()
        urls: list[URLResolver | URLPattern] = super().get_urls()
        return urls

    def make_safe(self) -> None:
        """Put every ModelAdmin that knows nothing of tenants behind PlatformAdmin
        (superusers only), and drop the bulk "delete selected" action: deleting goes
        through each object's delete page, which asks and is audited."""
        for model, model_admin in list(self._registry.items()):
            if isinstance(model_admin, TenantAdmin | PlatformAdmin):
                continue
            original = type(model_admin)
            restricted = type(original.__name__, (PlatformAdmin, original), {})
            self._registry[model] = restricted(model, self)
        if "delete_selected" in self._actions:
            self.disable_action("delete_selected")

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        books = merchant_books(request)
        context = {"books": books, "volume_days": VOLUME_DAYS, **(extra_context or {})}
        response: TemplateResponse = super().index(request, extra_context=context)
        return response


# The merchant's home ------------------------------------------------------------------


@dataclass
class Bar:
    day: dt.date
    label: str
    x: int
    y: int
    height: int


@dataclass
class Volume:
    livemode: bool
    currency: str
    total: int = 0
    count: int = 0
    by_day: dict[dt.date, int] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)

    @property
    def total_display(self) -> str:
        return money(self.total, self.currency)


@dataclass(frozen=True)
class AccountLine:
    account: Account

    @property
    def posted(self) -> str:
        return money(self.account.posted, self.account.currency_id)

    @property
    def held(self) -> str:
        return money(self.account.held, self.account.currency_id)

    @property
    def available(self) -> str:
        return money(self.account.available, self.account.currency_id)


@dataclass
class Books:
    organization: Organization
    role: str
    accounts: list[AccountLine]
    more_accounts: bool
    volumes: list[Volume]


BAR_WIDTH = 10
CHART_HEIGHT = 60


def merchant_books(request: HttpRequest) -> list[Books]:
    """Balances and volume of each organization the staff member belongs to: the
    accounts of each, and one GROUP BY for the volume of all of them."""
    access = access_for(request)
    organization_ids = access.organizations(Role.VIEWER)
    if not organization_ids:
        return []
    organizations = Organization.objects.filter(id__in=organization_ids).order_by("name")
    accounts: dict[str, list[AccountLine]] = {}
    for organization_id in organization_ids:
        # One query per organization (staff belong to one or two), each capped.
        listed = Account.objects.filter(holder=organization_id, kind=AccountKind.CUSTOMER)
        accounts[organization_id] = [
            AccountLine(account)
            for account in listed.order_by("-livemode", "currency_id", "id")[: HOME_ACCOUNTS + 1]
        ]

    today = timezone.localdate()
    first_day = today - dt.timedelta(days=VOLUME_DAYS - 1)
    days = [first_day + dt.timedelta(days=n) for n in range(VOLUME_DAYS)]
    volumes: dict[tuple[str, bool, str], Volume] = {}
    # Posted volume: transfers that settled (reversed ones settled first), by day created.
    rows = (
        Transfer.objects.filter(
            holder__in=organization_ids,
            settled_amount__isnull=False,
            created_at__gte=timezone.make_aware(dt.datetime.combine(first_day, dt.time.min)),
        )
        .annotate(day=TruncDate("created_at"))
        .values("holder", "livemode", "currency_id", "day")
        .annotate(total=Sum("settled_amount"), count=Count("id"))
        .order_by()
    )
    for row in rows:
        key = (row["holder"], row["livemode"], row["currency_id"])
        volume = volumes.setdefault(key, Volume(livemode=row["livemode"], currency=key[2]))
        volume.by_day[row["day"]] = volume.by_day.get(row["day"], 0) + row["total"]
        volume.total += row["total"]
        volume.count += row["count"]
    for volume in volumes.values():
        peak = max(volume.by_day.values(), default=0) or 1
        for index, day in enumerate(days):
            amount = volume.by_day.get(day, 0)
            height = round(CHART_HEIGHT * amount / peak) if amount else 0
            volume.bars.append(
                Bar(
                    day=day,
                    label=f"{day.isoformat()}: {money(amount, volume.currency)}",
                    x=index * BAR_WIDTH,
                    y=CHART_HEIGHT - height,
                    height=height,
                )
            )
    return [
        Books(
            organization=organization,
            role=str(access.roles[organization.id].label),
            accounts=accounts[organization.id][:HOME_ACCOUNTS],
            more_accounts=len(accounts[organization.id]) > HOME_ACCOUNTS,
            volumes=sorted(
                (volume for key, volume in volumes.items() if key[0] == organization.id),
                key=lambda v: (not v.livemode, v.currency),
            ),
        )
        for organization in organizations
    ]
