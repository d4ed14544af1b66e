"""Sandbox tools: fund a test account, move test money, make a test transfer fail, to
see the webhooks that follow without writing any code. Test mode only."""

from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from developers.forms.sandbox import (
    OUTCOME_FAIL,
    OUTCOME_SETTLE,
    FundForm,
    TransferForm,
    plain_message,
)
from developers.portal import Seat, member_view
from developers.templatetags.money import money
from ledger import errors as ledger_errors
from ledger import services as ledger
from ledger.models import Account, Settlement, Transfer
from oauth.models import Role
from payments import selectors as payments_read
from payments import services as payments


@member_view(Role.VIEWER, write_role=Role.DEVELOPER)
@require_safe
def sandbox(request: HttpRequest, seat: Seat) -> HttpResponse:
    return _page(request, seat)


@member_view(Role.DEVELOPER)
@require_POST
def sandbox_fund(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = FundForm(request.POST, accounts=_test_accounts(seat))
    if not form.is_valid():
        return _page(request, seat, fund_form=form)
    account = form.account("account_id")
    assert account is not None  # a valid form chose one of the offered accounts
    amount = form.cleaned_data["minor"]
    try:
        payments.test_account_fund(
            holder=seat.organization.id, account_id=account.id, amount=amount
        )
    except ledger_errors.LedgerError as error:
        form.ledger_error(error)
        return _page(request, seat, fund_form=form)
    messages.success(
        request,
        _("Added %(amount)s to %(account)s.")
        % {"amount": money(amount, account.currency_id), "account": account.name or account.id},
    )
    return redirect("sandbox")


@member_view(Role.DEVELOPER)
@require_POST
def sandbox_transfer(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = TransferForm(request.POST, accounts=_test_accounts(seat))
    if not form.is_valid():
        return _page(request, seat, transfer_form=form)
    source, destination = form.account("source"), form.account("destination")
    assert source is not None and destination is not None
    spec = ledger.TransferSpec(
        source_id=source.id,
        destination_id=destination.id,
        amount=form.cleaned_data["minor"],
        currency=source.currency_id,
        description=form.cleaned_data["description"],
    )
    try:
        transfer = _transfer_make(seat, spec, outcome=form.cleaned_data["outcome"])
    except ledger_errors.LedgerError as error:
        form.ledger_error(error)
        return _page(request, seat, transfer_form=form)
    done = {
        OUTCOME_SETTLE: _("Transfer %(id)s is settled."),
        OUTCOME_FAIL: _("Transfer %(id)s is pending and will fail when the worker settles it."),
    }
    pending = _("Transfer %(id)s is pending: the worker settles it within seconds.")
    messages.success(request, done.get(form.cleaned_data["outcome"], pending) % {"id": transfer.id})
    return redirect("sandbox")


@member_view(Role.DEVELOPER)
@require_POST
def sandbox_transfer_fail(request: HttpRequest, seat: Seat, transfer_id: str) -> HttpResponse:
    transfer = payments_read.sandbox_transfer_get(
        organization_id=seat.organization.id, transfer_id=transfer_id
    )
    if transfer is None:
        raise Http404
    try:
        payments.test_transfer_fail(organization_id=seat.organization.id, transfer_id=transfer.id)
    except ledger_errors.LedgerError as error:
        messages.error(request, plain_message(error))
    else:
        messages.success(
            request, _("%(id)s will fail when it comes to settle.") % {"id": transfer.id}
        )
    return redirect("sandbox")


def _transfer_make(seat: Seat, spec: ledger.TransferSpec, *, outcome: str) -> Transfer:
    organization_id = seat.organization.id
    if outcome == OUTCOME_SETTLE:
        # Manual, so the worker never races to settle it first.
        spec = replace(spec, settlement=Settlement.MANUAL)
    # One transaction: the worker must never see the transfer before it is settled or
    # marked to fail, and a settlement refused here must not leave the money held.
    with transaction.atomic():
        transfer = payments.transfer_create(
            organization_id=organization_id, livemode=False, spec=spec
        )
        if outcome == OUTCOME_SETTLE:
            transfer = payments.transfer_settle(
                organization_id=organization_id, transfer_id=transfer.id, amount=None
            )
        elif outcome == OUTCOME_FAIL:
            transfer = payments.test_transfer_fail(
                organization_id=organization_id, transfer_id=transfer.id
            )
    return transfer


def _test_accounts(seat: Seat) -> list[Account]:
    return payments_read.organization_accounts(organization_id=seat.organization.id, livemode=False)


def _page(
    request: HttpRequest,
    seat: Seat,
    *,
    fund_form: FundForm | None = None,
    transfer_form: TransferForm | None = None,
) -> HttpResponse:
    accounts = _test_accounts(seat)
    return render(
        request,
        "developers/sandbox/page.html",
        {
            "accounts": accounts,
            "fund_form": fund_form or FundForm(accounts=accounts),
            "transfer_form": transfer_form or TransferForm(accounts=accounts),
            "transfers": payments_read.sandbox_transfers_recent(
                organization_id=seat.organization.id
            ),
            "may_change": seat.can(Role.DEVELOPER),
        },
    )


urlpatterns = [
    path("sandbox/", sandbox, name="sandbox"),
    path("sandbox/fund", sandbox_fund, name="sandbox-fund"),
    path("sandbox/transfer", sandbox_transfer, name="sandbox-transfer"),
    path(
        "sandbox/transfers/<str:transfer_id>/fail",
        sandbox_transfer_fail,
        name="sandbox-transfer-fail",
    ),
]
