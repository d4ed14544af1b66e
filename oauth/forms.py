from __future__ import annotations

from typing import Any

from django import forms
from oauth2_provider.forms import AllowForm

from oauth.models import Membership, User


class ConsentForm(AllowForm):
    """DOT's authorization form, plus which organization and accounts to share."""

    organization = forms.ChoiceField(label="Organization")
    accounts = forms.MultipleChoiceField(
        label="Accounts to share", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(
        self, *args: Any, user: User, accounts: dict[str, list[Any]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        memberships = Membership.objects.filter(user=user).select_related("organization")
        self.memberships = {m.organization_id: m for m in memberships}
        self.fields["organization"].choices = [
            (m.organization_id, m.organization.name) for m in memberships
        ]
        self.accounts_by_organization = accounts
        self.fields["accounts"].choices = [
            (
                account.id,
                f"{account.name or account.currency_id} · {account.currency_id} · {account.id}",
            )
            for listed in accounts.values()
            for account in listed
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization = cleaned.get("organization")
        chosen = set(cleaned.get("accounts") or [])
        if organization and chosen:
            own = {
                account.id: account
                for account in self.accounts_by_organization.get(organization, [])
            }
            if not chosen <= set(own):
                raise forms.ValidationError("Choose accounts of the selected organization only.")
            if len({own[account_id].livemode for account_id in chosen}) > 1:
                raise forms.ValidationError("Share test-mode or live-mode accounts, not both.")
            cleaned["livemode"] = own[next(iter(chosen))].livemode
        else:
            cleaned["livemode"] = False
        return cleaned
