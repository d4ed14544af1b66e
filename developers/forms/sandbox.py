"""What a developer fills in to fund a test account or move test money. Amounts are
typed in major units ("25.00") and converted exactly to the ledger's minor units."""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from developers.templatetags.money import money
from ledger import errors as ledger_errors
from ledger import selectors as books
from ledger.models import MAX_AMOUNT, Account

AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# Wide enough for any amount the field's length allows; any rounding is an error.
EXACT = Context(prec=80, traps=[Inexact, Rounded, InvalidOperation])

OUTCOME_PENDING, OUTCOME_SETTLE, OUTCOME_FAIL = "pending", "settle", "fail"
OUTCOME_CHOICES = [
    (OUTCOME_PENDING, _("Pending: the worker settles it within seconds")),
    (OUTCOME_SETTLE, _("Settle now")),
    (OUTCOME_FAIL, _("Fail: it fails when the worker comes to settle it")),
]


def minor_units(text: str, currency: str) -> int:
    """`text` in the currency's major unit as an exact integer of minor units, or a
    ValidationError saying what is wrong with it."""
    exponent = books.currency_exponents()[currency]
    text = text.strip()
    if not AMOUNT.fullmatch(text):
        raise forms.ValidationError(_("Enter a number such as 25.00, with a dot for decimals."))
    value = Decimal(text)  # from a string: exact
    if value <= 0:
        raise forms.ValidationError(_("Enter an amount above zero."))
    if -int(value.as_tuple().exponent) > exponent:
        raise forms.ValidationError(
            ngettext(
                "%(currency)s has at most %(count)d decimal place.",
                "%(currency)s has at most %(count)d decimal places.",
                exponent,
            )
            % {"currency": currency, "count": exponent}
            if exponent
            else _("%(currency)s has no decimal places.") % {"currency": currency}
        )
    minor = int(value.scaleb(exponent, context=EXACT))
    if minor > MAX_AMOUNT:
        raise forms.ValidationError(
            _("At most %(limit)s at once.") % {"limit": money(MAX_AMOUNT, currency)}
        )
    return minor


def account_choices(accounts: list[Account]) -> list[tuple[str, str]]:
    return [
        (a.id, f"{a.name or a.id} · {money(a.available, a.currency_id)} · {a.id}") for a in accounts
    ]


class _SandboxForm(forms.Form):
    """Offers only the organization's test-mode accounts: any other id is not a choice."""

    # Both forms share a page and field names: distinct element ids keep each label
    # pointing at its own input.
    id_prefix = "sandbox"

    def __init__(self, *args: Any, accounts: list[Account], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)
        self.accounts = {account.id: account for account in accounts}
        for name, field in self.fields.items():
            if isinstance(field, forms.ChoiceField) and name != "outcome":
                field.choices = account_choices(accounts)
                field.error_messages["invalid_choice"] = _("Choose one of your test accounts.")

    def account(self, name: str) -> Account | None:
        return self.accounts.get(self.cleaned_data.get(name, ""))

    def ledger_error(self, error: ledger_errors.LedgerError) -> None:
        """Show what the ledger refused next to the field it concerns."""
        field = LEDGER_PARAMS.get(error.param or "")
        self.add_error(field if field in self.fields else None, plain_message(error))


class FundForm(_SandboxForm):
    id_prefix = "fund"

    account_id = forms.ChoiceField(label=_("Test account"))
    amount = forms.CharField(
        label=_("Amount"),
        max_length=40,
        help_text=_("In the account's currency, e.g. 25.00 (USD) or 2500 (JPY)."),
    )

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        account = self.account("account_id")
        if account is not None and "amount" in self.cleaned_data:
            try:
                self.cleaned_data["minor"] = minor_units(
                    self.cleaned_data["amount"], account.currency_id
                )
            except forms.ValidationError as error:
                self.add_error("amount", error)
        return cleaned


class TransferForm(_SandboxForm):
    id_prefix = "transfer"

    source = forms.ChoiceField(label=_("From"))
    destination = forms.ChoiceField(label=_("To"))
    amount = forms.CharField(
        label=_("Amount"), max_length=40, help_text=_("In the accounts' currency, e.g. 10.50.")
    )
    description = forms.CharField(label=_("Description (optional)"), max_length=500, required=False)
    outcome = forms.ChoiceField(
        label=_("What happens next"),
        choices=OUTCOME_CHOICES,
        initial=OUTCOME_PENDING,
        widget=forms.RadioSelect,
    )

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        source, destination = self.account("source"), self.account("destination")
        if source is None or destination is None:
            return cleaned
        if source.id == destination.id:
            self.add_error("destination", _("Choose an account other than the source."))
        elif source.currency_id != destination.currency_id:
            self.add_error(
                "destination",
                _("Choose an account in %(currency)s, like the source.")
                % {"currency": source.currency_id},
            )
        if "amount" in self.cleaned_data:
            try:
                self.cleaned_data["minor"] = minor_units(
                    self.cleaned_data["amount"], source.currency_id
                )
            except forms.ValidationError as error:
                self.add_error("amount", error)
        return cleaned


# The form field each ledger error's `param` concerns.
LEDGER_PARAMS = {
    "id": "account_id",
    "source_account": "source",
    "destination_account": "destination",
    "currency": "destination",
    "amount": "amount",
}


def plain_message(error: ledger_errors.LedgerError) -> str:
    messages = {
        "insufficient_funds": _("The source account has too little available."),
        "account_frozen": _("This account is frozen: no money moves in or out."),
        "account_closed": _("This account is closed."),
        "balance_overflow": _("That would take a balance beyond what the ledger can hold."),
        "not_found": _("Choose one of your test accounts."),
        "currency_mismatch": _("Both accounts must hold the same currency."),
        "same_account": _("Choose two different accounts."),
        "invalid_amount": _("Enter an amount above zero."),
        "transfer_not_pending": _("This transfer is no longer pending."),
    }
    return str(messages.get(error.code, str(error)))
