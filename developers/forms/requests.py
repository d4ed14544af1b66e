"""The request log's filters: a GET form, so a filtered view is a link one can share."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re

from django import forms
from django.utils.translation import gettext_lazy as _

from payments.selectors import RequestCursor, RequestFilter

METHOD_CHOICES = [("", _("Any"))] + [
    (method, method) for method in ("GET", "POST", "PATCH", "PUT", "DELETE")
]
MODE_CHOICES = [("", _("Both")), ("test", _("Test")), ("live", _("Live"))]
STATUS_CLASSES = {"2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5}
REQUEST_ID = re.compile(r"[A-Za-z0-9_]{1,40}")
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class RequestFilterForm(forms.Form):
    status = forms.CharField(
        label=_("Status"),
        required=False,
        max_length=3,
        help_text=_("2xx, 4xx, 5xx or a code such as 404."),
    )
    path = forms.CharField(label=_("Path contains"), required=False, max_length=200)
    method = forms.ChoiceField(label=_("Method"), choices=METHOD_CHOICES, required=False)
    since = forms.DateTimeField(
        label=_("From (UTC)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    until = forms.DateTimeField(
        label=_("To (UTC)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    mode = forms.ChoiceField(label=_("Mode"), choices=MODE_CHOICES, required=False)
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def clean_status(self) -> str:
        status: str = self.cleaned_data["status"].strip().lower()
        if status and status not in STATUS_CLASSES and not _is_status_code(status):
            raise forms.ValidationError(_("Enter 2xx, 4xx, 5xx or a code from 100 to 599."))
        return status

    def clean_cursor(self) -> RequestCursor | None:
        cursor: str = self.cleaned_data["cursor"]
        if not cursor:
            return None
        decoded = cursor_decode(cursor)
        if decoded is None:
            raise forms.ValidationError(_("This page link is not valid; start from the newest."))
        return decoded

    def clean(self) -> dict[str, object] | None:
        cleaned = super().clean()
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        if since and until and since > until:
            self.add_error("until", _("Choose a time after “From”."))
        return cleaned

    def filters(self) -> RequestFilter:
        """The valid form's criteria, as the selector takes them."""
        data = self.cleaned_data
        status = data["status"]
        mode = data["mode"]
        return RequestFilter(
            status=int(status) if status and status not in STATUS_CLASSES else None,
            status_class=STATUS_CLASSES.get(status),
            path_contains=data["path"].strip(),
            method=data["method"],
            since=data["since"],
            until=data["until"],
            livemode={"test": False, "live": True}.get(mode),
        )


def _is_status_code(text: str) -> bool:
    return text.isascii() and text.isdigit() and 100 <= int(text) <= 599


def cursor_encode(cursor: RequestCursor) -> str:
    created_at, request_id = cursor
    raw = json.dumps([created_at.isoformat(), request_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(text: str) -> RequestCursor | None:
    try:
        raw = base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))
        created_at, request_id = json.loads(raw)
        when = dt.datetime.fromisoformat(created_at)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        return None
    if when.tzinfo is None or not isinstance(request_id, str):
        return None
    if not REQUEST_ID.fullmatch(request_id):
        return None
    return when, request_id
