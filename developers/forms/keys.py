"""What a member fills in to create or rotate an API key."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oauth.models import Scope

# A key that outlives a year is a key nobody remembers to rotate.
MAX_EXPIRY = dt.timedelta(days=365)

MODE_CHOICES = [("test", _("Test")), ("live", _("Live"))]
ACCESS_CHOICES = [
    ("full", _("Full access: a secret key with every scope")),
    ("restricted", _("Restricted: only the scopes chosen below")),
]
GRACE_CHOICES = [
    (0, _("No time: stop it now")),
    (3600, _("1 hour")),
    (86400, _("24 hours")),
    (3 * 86400, _("3 days")),
    (7 * 86400, _("7 days")),
]


class KeyCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Where the key is used, e.g. “billing server”."),
    )
    mode = forms.ChoiceField(
        label=_("Mode"), choices=MODE_CHOICES, initial="test", widget=forms.RadioSelect
    )
    access = forms.ChoiceField(
        label=_("Access"), choices=ACCESS_CHOICES, initial="full", widget=forms.RadioSelect
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes of a restricted key"),
        choices=[(scope.value, f"{scope.value} — {scope.label}") for scope in Scope],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    expires_on = forms.DateField(
        label=_("Expires on (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The key stops working at the end of this day (UTC); at most a year ahead."),
    )

    def __init__(self, *args: Any, may_create_live: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_create_live = may_create_live
        if not may_create_live:
            self.fields["mode"].help_text = _("Only an owner or admin may create live keys.")
        today = timezone.now().date()
        self.fields["expires_on"].widget.attrs.update(
            min=(today + dt.timedelta(days=1)).isoformat(), max=(today + MAX_EXPIRY).isoformat()
        )

    def clean_mode(self) -> str:
        mode: str = self.cleaned_data["mode"]
        if mode == "live" and not self.may_create_live:
            raise forms.ValidationError(_("Only an owner or admin may create live keys."))
        return mode

    def clean_expires_on(self) -> dt.date | None:
        expires_on: dt.date | None = self.cleaned_data["expires_on"]
        if expires_on is None:
            return None
        today = timezone.now().date()
        if expires_on <= today:
            raise forms.ValidationError(_("Choose a date after today."))
        if expires_on > today + MAX_EXPIRY:
            raise forms.ValidationError(_("Choose a date at most a year from today."))
        return expires_on

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("access") == "restricted" and not cleaned.get("scopes"):
            self.add_error("scopes", _("Choose at least one scope for a restricted key."))
        return cleaned

    @property
    def livemode(self) -> bool:
        return bool(self.cleaned_data["mode"] == "live")

    @property
    def granted_scopes(self) -> list[str] | None:
        """None for a full-access secret key, as oauth.services.api_key_create expects."""
        if self.cleaned_data["access"] == "full":
            return None
        return list(self.cleaned_data["scopes"])

    @property
    def expires_at(self) -> dt.datetime | None:
        expires_on: dt.date | None = self.cleaned_data["expires_on"]
        if expires_on is None:
            return None
        return dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


class KeyRotateForm(forms.Form):
    grace = forms.TypedChoiceField(
        label=_("Keep the old key working for"),
        choices=GRACE_CHOICES,
        coerce=int,
        initial=86400,
        help_text=_("Until then both keys work, so you can deploy the new one without downtime."),
    )

    @property
    def grace_period(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.cleaned_data["grace"])
