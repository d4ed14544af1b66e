"""The books and the payments layer in the admin: accounts, transfers, entries, events,
webhook endpoints and deliveries.

They are registered here rather than in ledger/admin.py because the admin's money
actions must go through payments.services, which records the same events and webhooks
as the API does, and the ledger may not import the payments layer.

Everything here is read-only, for superusers too: balances and entries are never
edited by hand. Money moves only through the actions (void, refund, freeze, unfreeze),
each behind a confirmation page, each re-checking every selected row against the staff
member's organizations and writing an audit line in the transaction of its change.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from ledger import errors as ledger_errors
from ledger import services as ledger
from ledger.models import Account, Entry, Transfer
from ledger.selectors import currency_exponents
from oauth.admin_support import (
    AccountCurrencyFilter,
    AccountFilter,
    AccountModeFilter,
    CurrencyFilter,
    DateRangeFilter,
    ModeFilter,
    OrganizationFilter,
    ReadOnlyInline,
    TenantAdmin,
    access_for,
    audit,
    badge,
    day_start,
    mode_badge,
    money,
    money_html,
)
from oauth.models import Role
from payments import services as payments
from payments.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Moving money is for those who run the organization.
MONEY_ROLE = Role.ADMIN


def transfer_summary(transfer: Transfer) -> str:
    amount = transfer.settled_amount or transfer.amount
    text = f"{money(amount, transfer.currency_id)} · {transfer.status}"
    return f"{text} · {transfer.description}" if transfer.description else text


# Accounts --------------------------------------------------------------------------------


class ExportForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To (included)"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", gettext("The end comes on or after the start."))
        return cleaned


CSV_HEADER = [
    "entry_id",
    "created_at",
    "transfer_id",
    "description",
    "amount",
    "amount_decimal",
    "currency",
    "balance_after",
    "sequence",
]
CSV_CHUNK_ROWS = 2000


def spreadsheet_safe(text: str) -> str:
    """A description typed by anyone must not run as a formula in a spreadsheet."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def entries_csv(account: Account, start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """The account's entries from `start` (included) to `end` (excluded), oldest first,
    as CSV text in chunks of a few thousand rows. Rows come from a server-side cursor
    (iterator) a chunk at a time and only the columns written are read, so memory stays
    flat whether the range holds a hundred entries or millions."""
    exponent = currency_exponents()[account.currency_id]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    rows = (
        Entry.objects.filter(account_id=account.id, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "seq")
        .values_list(
            "id",
            "created_at",
            "transfer_id",
            "transfer__description",
            "amount",
            "balance_after",
            "seq",
        )
        .iterator(chunk_size=CSV_CHUNK_ROWS)
    )
    for count, (entry_id, created_at, transfer_id, description, amount, after, seq) in enumerate(
        rows, 1
    ):
        writer.writerow(
            [
                entry_id,
                created_at.isoformat().replace("+00:00", "Z"),
                transfer_id,
                spreadsheet_safe(description),
                amount,
                f"{Decimal(amount).scaleb(-exponent):.{exponent}f}",
                account.currency_id,
                after,
                seq,
            ]
        )
        if count % CSV_CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@admin.register(Account)
class AccountAdmin(TenantAdmin[Account]):
    tenant_field = "holder"
    list_display = [
        "id",
        "name",
        "currency",
        "mode",
        "status_badge",
        "posted_display",
        "held_display",
        "available_display",
        "holder",
        "created_at",
    ]
    list_filter = [
        "status",
        ModeFilter,
        CurrencyFilter,
        "kind",
        OrganizationFilter,
        DateRangeFilter,
    ]
    search_fields = ["id__exact", "name"]
    json_search_fields = ("metadata",)
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "id",
        "name",
        "holder",
        "currency",
        "mode",
        "kind",
        "status_badge",
        "posted_display",
        "held_display",
        "available_display",
        "overdraft_display",
        "entry_count",
        "metadata_json",
        "created_at",
    )
    actions = ["freeze", "unfreeze"]

    @admin.display(description=_("mode"))
    def mode(self, account: Account) -> SafeString:
        return mode_badge(account.livemode)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, account: Account) -> SafeString:
        return badge(account.status, account.get_status_display())

    @admin.display(description=_("posted"), ordering="posted")
    def posted_display(self, account: Account) -> SafeString:
        return money_html(account.posted, account.currency_id)

    @admin.display(description=_("held"), ordering="held")
    def held_display(self, account: Account) -> SafeString:
        return money_html(account.held, account.currency_id)

    @admin.display(description=_("available"))
    def available_display(self, account: Account) -> SafeString:
        return money_html(account.available, account.currency_id)

    @admin.display(description=_("overdraft limit"))
    def overdraft_display(self, account: Account) -> SafeString:
        return money_html(account.overdraft_limit, account.currency_id)

    @admin.display(description=_("metadata"))
    def metadata_json(self, account: Account) -> SafeString:
        return pretty_json(account.metadata)

    # Freezing ---------------------------------------------------------------------------

    def has_money_permission(self, request: HttpRequest) -> bool:
        return access_for(request).may(MONEY_ROLE)

    @admin.action(description=_("Freeze selected accounts…"), permissions=["money"])
    def freeze(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponseBase | None:
        return self._set_status(request, queryset, freeze=True)

    @admin.action(description=_("Unfreeze selected accounts…"), permissions=["money"])
    def unfreeze(
        self, request: HttpRequest, queryset: QuerySet[Account]
    ) -> HttpResponseBase | None:
        return self._set_status(request, queryset, freeze=False)

    def _set_status(
        self, request: HttpRequest, queryset: QuerySet[Account], *, freeze: bool
    ) -> HttpResponseBase | None:
        accounts = self.rows_for_action(request, queryset, MONEY_ROLE)
        if accounts is None:
            return None
        if "confirm" not in request.POST:
            return self.confirmation(
                request,
                title=_("Freeze accounts") if freeze else _("Unfreeze accounts"),
                question=(
                    _("No money moves in or out of a frozen account; its pending transfers fail.")
                    if freeze
                    else _("Money moves in and out of these accounts again.")
                ),
                items=[
                    (a.id, f"{a.name or a.currency_id} · {money(a.posted, a.currency_id)}")
                    for a in accounts
                ],
            )
        done, refused = [], []
        for account in accounts:
            try:
                with transaction.atomic():
                    if freeze:
                        changed = ledger.account_freeze(account_id=account.id)
                    else:
                        changed = ledger.account_unfreeze(account_id=account.id)
                    audit(
                        request,
                        "account.frozen" if freeze else "account.unfrozen",
                        organization_id=account.holder,
                        target=account.id,
                        detail={"status": changed.status},
                    )
                done.append(account.id)
            except ledger_errors.LedgerError as error:
                refused.append(f"{account.id}: {error}")
        froze = ngettext_lazy("Froze %(count)d account.", "Froze %(count)d accounts.", "count")
        unfroze = ngettext_lazy(
            "Unfroze %(count)d account.", "Unfroze %(count)d accounts.", "count"
        )
        report(self, request, done, refused, message=froze if freeze else unfroze)
        return None

    # Export -------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "<path:object_id>/export/",
            self.admin_site.admin_view(self.export_entries),
            name="ledger_account_export",
        )
        return [export, *super().get_urls()]

    def export_entries(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """A form for the date range, then the entries of that range as a CSV download."""
        account = self.get_object(request, unquote(object_id))
        if account is None or not self.has_view_permission(request, account):
            raise PermissionDenied
        today = timezone.localdate()
        form = ExportForm(
            request.GET if "start" in request.GET else None,
            initial={"start": today - dt.timedelta(days=30), "end": today},
        )
        if form.is_bound and form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
            audit(
                request,
                "account.entries_exported",
                organization_id=account.holder,
                target=account.id,
                detail={"from": start.isoformat(), "to": end.isoformat()},
            )
            response = StreamingHttpResponse(
                entries_csv(account, day_start(start), day_start(end) + dt.timedelta(days=1)),
                content_type="text/csv; charset=utf-8",
            )
            filename = f"{account.id}_{start.isoformat()}_{end.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Export entries of %(account)s") % {"account": account.id},
            "opts": self.opts,
            "original": account,
            "form": form,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledger/account/export_entries.html", context)


# Transfers --------------------------------------------------------------------------------


class RefundForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the audit log and shown as the refund's description."),
    )


class EntryInline(ReadOnlyInline[Entry, Transfer]):
    model = Entry
    fields = readonly_fields = (
        "id",
        "account_id",
        "amount_display",
        "balance_display",
        "seq",
    )
    ordering = ["id"]

    @admin.display(description=_("amount"))
    def amount_display(self, entry: Entry) -> SafeString:
        return money_html(entry.amount, entry.transfer.currency_id)

    @admin.display(description=_("balance after"))
    def balance_display(self, entry: Entry) -> SafeString:
        return money_html(entry.balance_after, entry.transfer.currency_id)


@admin.register(Transfer)
class TransferAdmin(TenantAdmin[Transfer]):
    tenant_field = "holder"
    list_display = [
        "id",
        "created_at",
        "amount_display",
        "status_badge",
        "mode",
        "source_account",
        "destination_account",
        "short_description",
    ]
    list_filter = [
        "status",
        ModeFilter,
        CurrencyFilter,
        "settlement",
        OrganizationFilter,
        DateRangeFilter,
    ]
    search_fields = [
        "id__exact",
        "description",
        "client_reference__exact",
        "source__id__exact",
        "destination__id__exact",
    ]
    json_search_fields = ("metadata",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "holder",
        "mode",
        "status_badge",
        "amount_display",
        "settled_display",
        "currency",
        "source_account",
        "destination_account",
        "settlement",
        "description",
        "metadata_json",
        "client_reference",
        "hold_expires_at",
        "failure_reason",
        "reversal_of_id",
        "reversed_by",
        "version",
        "created_at",
        "updated_at",
    )
    inlines = [EntryInline]
    actions = ["void", "refund"]

    @admin.display(description=_("mode"))
    def mode(self, transfer: Transfer) -> SafeString:
        return mode_badge(transfer.livemode)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, transfer: Transfer) -> SafeString:
        return badge(transfer.status, transfer.get_status_display())

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, transfer: Transfer) -> SafeString:
        return money_html(transfer.amount, transfer.currency_id)

    @admin.display(description=_("settled amount"))
    def settled_display(self, transfer: Transfer) -> SafeString:
        return money_html(transfer.settled_amount, transfer.currency_id)

    @admin.display(description=_("source"))
    def source_account(self, transfer: Transfer) -> str:
        return transfer.source_id

    @admin.display(description=_("destination"))
    def destination_account(self, transfer: Transfer) -> str:
        return transfer.destination_id

    @admin.display(description=_("description"))
    def short_description(self, transfer: Transfer) -> str:
        return Truncator(transfer.description).chars(60)

    @admin.display(description=_("reversed by"))
    def reversed_by(self, transfer: Transfer) -> str:
        reversal = Transfer.objects.filter(reversal_of=transfer).values_list("id", flat=True)
        return reversal.first() or "—"

    @admin.display(description=_("metadata"))
    def metadata_json(self, transfer: Transfer) -> SafeString:
        return pretty_json(transfer.metadata)

    def has_money_permission(self, request: HttpRequest) -> bool:
        return access_for(request).may(MONEY_ROLE)

    @admin.action(description=_("Void selected pending transfers…"), permissions=["money"])
    def void(self, request: HttpRequest, queryset: QuerySet[Transfer]) -> HttpResponseBase | None:
        transfers = self.rows_for_action(request, queryset, MONEY_ROLE)
        if transfers is None:
            return None
        if "confirm" not in request.POST:
            return self.confirmation(
                request,
                title=_("Void transfers"),
                question=_("The held money goes back to the source; nothing is posted."),
                items=[(t.id, transfer_summary(t)) for t in transfers],
            )
        done, refused = [], []
        for transfer in transfers:
            try:
                with transaction.atomic():
                    voided = payments.transfer_void(
                        organization_id=transfer.holder, transfer_id=transfer.id
                    )
                    audit(
                        request,
                        "transfer.voided",
                        organization_id=transfer.holder,
                        target=transfer.id,
                        detail={"amount": voided.amount, "currency": voided.currency_id},
                    )
                done.append(transfer.id)
            except ledger_errors.LedgerError as error:
                refused.append(f"{transfer.id}: {error}")
        report(
            self,
            request,
            done,
            refused,
            message=ngettext_lazy(
                "Voided %(count)d transfer.", "Voided %(count)d transfers.", "count"
            ),
        )
        return None

    @admin.action(description=_("Refund selected settled transfers…"), permissions=["money"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Transfer]) -> HttpResponseBase | None:
        transfers = self.rows_for_action(request, queryset, MONEY_ROLE)
        if transfers is None:
            return None
        form = RefundForm(request.POST if "confirm" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self.confirmation(
                request,
                title=_("Refund transfers"),
                question=_(
                    "Each settled transfer is reversed by a new, opposite transfer of the "
                    "amount settled; the original entries stay as they are."
                ),
                items=[(t.id, transfer_summary(t)) for t in transfers],
                form=form,
                button=_("Refund"),
            )
        reason: str = form.cleaned_data["reason"].strip()
        done, refused = [], []
        for transfer in transfers:
            try:
                with transaction.atomic():
                    reversal = payments.transfer_reverse(
                        organization_id=transfer.holder,
                        transfer_id=transfer.id,
                        description=Truncator(f"Refund of {transfer.id}: {reason}").chars(500),
                    )
                    audit(
                        request,
                        "transfer.refunded",
                        organization_id=transfer.holder,
                        target=transfer.id,
                        detail={
                            "reason": reason,
                            "reversal": reversal.reversal.id,
                            "amount": reversal.reversal.amount,
                            "currency": reversal.reversal.currency_id,
                        },
                    )
                done.append(transfer.id)
            except ledger_errors.LedgerError as error:
                refused.append(f"{transfer.id}: {error}")
        report(
            self,
            request,
            done,
            refused,
            message=ngettext_lazy(
                "Refunded %(count)d transfer.", "Refunded %(count)d transfers.", "count"
            ),
        )
        return None


def report(
    model_admin: TenantAdmin[Any],
    request: HttpRequest,
    done: list[str],
    refused: list[str],
    *,
    message: Any,
) -> None:
    """`message` (an ngettext_lazy counting "count") for what was done; one per refusal."""
    if done:
        model_admin.message_user(request, message % {"count": len(done)}, messages.SUCCESS)
    for line in refused:
        model_admin.message_user(
            request, gettext("Refused: %(why)s") % {"why": line}, messages.ERROR
        )


def pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


# Entries -----------------------------------------------------------------------------------


@admin.register(Entry)
class EntryAdmin(TenantAdmin[Entry]):
    tenant_field = "account__holder"
    list_display = [
        "id",
        "created_at",
        "account_id",
        "amount_display",
        "balance_display",
        "seq",
        "transfer_id",
    ]
    list_filter = [AccountFilter, AccountCurrencyFilter, AccountModeFilter, DateRangeFilter]
    list_select_related = ["account"]
    search_fields = [
        "id__exact",
        "account__id__exact",
        "transfer__id__exact",
        "transfer__description",
    ]
    json_search_fields = ("transfer__metadata",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "account_id",
        "transfer_id",
        "amount_display",
        "balance_display",
        "seq",
        "created_at",
    )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, entry: Entry) -> SafeString:
        return money_html(entry.amount, entry.account.currency_id)

    @admin.display(description=_("balance after"))
    def balance_display(self, entry: Entry) -> SafeString:
        return money_html(entry.balance_after, entry.account.currency_id)


# Events and webhooks -------------------------------------------------------------------------


class DeliveryInline(ReadOnlyInline[WebhookDelivery, Event]):
    model = WebhookDelivery
    fields = readonly_fields = (
        "id",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
    )
    show_change_link = True


@admin.register(Event)
class EventAdmin(TenantAdmin[Event]):
    list_display = ["id", "type", "mode", "organization", "created_at"]
    list_filter = ["type", ModeFilter, OrganizationFilter, DateRangeFilter]
    list_select_related = ["organization"]
    search_fields = ["id__exact", "type"]
    json_search_fields = ("data",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "type",
        "mode",
        "organization",
        "created_at",
        "data_json",
    )
    inlines = [DeliveryInline]

    @admin.display(description=_("mode"))
    def mode(self, event: Event) -> SafeString:
        return mode_badge(event.livemode)

    @admin.display(description=_("data"))
    def data_json(self, event: Event) -> SafeString:
        return pretty_json(event.data)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdmin[WebhookEndpoint]):
    """Endpoints without their signing secrets."""

    list_display = ["url", "id", "status_badge", "mode", "organization", "created_at"]
    list_filter = ["status", ModeFilter, OrganizationFilter]
    list_select_related = ["organization"]
    search_fields = ["id__exact", "url", "description"]
    fields = readonly_fields = (
        "id",
        "url",
        "description",
        "organization",
        "mode",
        "status_badge",
        "disabled_reason",
        "enabled_events",
        "made_by",
        "created_at",
        "updated_at",
    )

    @admin.display(description=_("mode"))
    def mode(self, endpoint: WebhookEndpoint) -> SafeString:
        return mode_badge(endpoint.livemode)

    @admin.display(description=_("made by"))
    def made_by(self, endpoint: WebhookEndpoint) -> str:
        """The organization itself, or an application through a user's OAuth grant
        (which alone sees it through the API, and bounds what it is sent)."""
        consent = endpoint.consent
        if consent is None:
            return str(_("the organization"))
        return f"{consent.application.name} (OAuth, granted by {consent.user})"

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, endpoint: WebhookEndpoint) -> SafeString:
        return badge(endpoint.status)


class AttemptInline(ReadOnlyInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    fields = readonly_fields = (
        "attempted_at",
        "status_code",
        "latency_ms",
        "error",
        "response",
    )
    ordering = ["attempted_at"]

    @admin.display(description=_("response"))
    def response(self, attempt: WebhookAttempt) -> str:
        return Truncator(attempt.response_body).chars(200)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantAdmin[WebhookDelivery]):
    tenant_field = "endpoint__organization_id"
    list_display = [
        "id",
        "event_link",
        "event_type",
        "endpoint_url",
        "status_badge",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", OrganizationFilter, DateRangeFilter]
    list_select_related = ["event", "endpoint"]
    search_fields = ["id__exact", "event__id__exact", "endpoint__id__exact", "endpoint__url"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "event_link",
        "event_type",
        "endpoint_url",
        "status_badge",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "updated_at",
    )
    inlines = [AttemptInline]

    @admin.display(description=_("event"))
    def event_link(self, delivery: WebhookDelivery) -> SafeString:
        url = reverse("admin:payments_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event_id)

    @admin.display(description=_("type"))
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description=_("endpoint"))
    def endpoint_url(self, delivery: WebhookDelivery) -> str:
        return delivery.endpoint.url

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, delivery: WebhookDelivery) -> SafeString:
        return badge(delivery.status)
