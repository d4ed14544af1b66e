"""The forms of the webhook endpoint pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from oauth.models import User
from payments import webhooks
from payments.events import EVENT_TYPES

ALL_EVENTS = "*"
MODES = [("test", _("Test")), ("live", _("Live"))]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("Endpoint URL"),
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/openpay"}),
        help_text=_("Where OpenPay POSTs each event. It must be reachable from the internet."),
    )
    description = forms.CharField(label=_("Description"), max_length=500, required=False)
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=MODES,
        initial="test",
        widget=forms.RadioSelect,
        help_text=_("Test-mode endpoints get test-mode events; live-mode ones real events."),
    )
    enabled_events = forms.MultipleChoiceField(
        label=_("Events to send"),
        choices=[(ALL_EVENTS, _("All events, including types added later"))]
        + [(event_type, event_type) for event_type in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        # What most receivers want at first; narrowing it is one click away.
        initial=[ALL_EVENTS],
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def __init__(self, *args: Any, can_go_live: bool, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # An endpoint stays in the mode it was made in: its past deliveries and the
            # events it may be sent belong to that mode.
            del self.fields["mode"]
        elif not can_go_live:
            mode = self.fields["mode"]
            assert isinstance(mode, forms.ChoiceField)
            mode.choices = MODES[:1]
            mode.help_text = _("Only admins and owners add live-mode endpoints.")

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"].strip()
        # The same reason the API gives, so the two never disagree about a URL.
        refusal = webhooks.url_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal, code="refused")
        return url

    def clean_enabled_events(self) -> list[str]:
        chosen: list[str] = self.cleaned_data["enabled_events"]
        return [ALL_EVENTS] if ALL_EVENTS in chosen else sorted(chosen)


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), choices=[("enabled", _("Enabled")), ("disabled", _("Disabled"))]
    )


class PasswordForm(forms.Form):
    """The signed-in user's password, asked again before a signing secret is shown. A
    wrong one counts as a failed login, so guessing it here ends in the same lockout
    as guessing it on the login page."""

    # Named "password" so django-axes masks it in the failure record it keeps.
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(
        self,
        *args: Any,
        request: HttpRequest,
        user: User,
        label: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = user
        if label:
            # Two of these forms share a page: each field needs a name of its own.
            self.fields["password"].label = label

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        credentials = {"username": self.user.get_username()}
        if AxesProxyHandler.is_locked(self.request, credentials):
            raise forms.ValidationError(
                _("Too many wrong passwords. Try again later."), code="locked"
            )
        if not self.user.check_password(password):
            user_login_failed.send(sender=__name__, credentials=credentials, request=self.request)
            raise forms.ValidationError(_("That is not your password."), code="wrong")
        return password


class ReplaySinceForm(forms.Form):
    since = forms.DateTimeField(
        label=_("Send again every event since (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_since(self) -> dt.datetime:
        since: dt.datetime = self.cleaned_data["since"]
        if since > timezone.now():
            raise forms.ValidationError(_("Choose a moment in the past."), code="future")
        return since


class DeliveryReplayForm(forms.Form):
    delivery = forms.CharField(max_length=40, widget=forms.HiddenInput)
