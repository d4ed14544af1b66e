"""API keys: list, create (shown once), rotate with a grace period, revoke."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from developers.forms.keys import KeyCreateForm, KeyRotateForm
from developers.portal import Seat, audit, member_view, secret_keep, secret_page, secret_take
from oauth import selectors as identity_read
from oauth import services as identity
from oauth.models import APIKey, Role

KEYS_PER_PAGE = 50


def utc(moment: dt.datetime | None) -> str | None:
    """A moment as people read it in a message."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else None


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


STATUS_LABELS = {
    "active": gettext_lazy("Active"),
    "rotated": gettext_lazy("Expiring after rotation"),
    "expired": gettext_lazy("Expired"),
    "revoked": gettext_lazy("Revoked"),
}
STATUS_BADGES = {"active": "ok", "rotated": "wait", "expired": "bad", "revoked": "bad"}


@dataclass(frozen=True)
class KeyRow:
    key: APIKey
    status: str

    @classmethod
    def of(cls, key: APIKey, now: dt.datetime) -> KeyRow:
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            status = "expired"
        elif key.replaced_by_id is not None:
            status = "rotated"
        else:
            status = "active"
        return cls(key=key, status=status)

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def badge(self) -> str:
        return STATUS_BADGES[self.status]

    @property
    def rotatable(self) -> bool:
        return self.status == "active"

    @property
    def revocable(self) -> bool:
        return self.status in {"active", "rotated"}


def organization_key(seat: Seat, key_id: str, *, to_change: bool = False) -> APIKey:
    """One of the seat's organization's keys, else 404. Changing a live key takes the
    same role as creating one."""
    api_key = get_object_or_404(
        identity_read.organization_api_keys(organization=seat.organization), id=key_id
    )
    if to_change and api_key.livemode and not seat.can(Role.ADMIN):
        raise PermissionDenied
    return api_key


@member_view(Role.VIEWER, write_role=Role.DEVELOPER)
@require_GET
def key_list(request: HttpRequest, seat: Seat) -> HttpResponse:
    page = Paginator(
        identity_read.organization_api_keys(organization=seat.organization), KEYS_PER_PAGE
    ).get_page(request.GET.get("page"))
    now = timezone.now()
    return render(
        request,
        "developers/keys/list.html",
        {
            "page": page,
            "rows": [KeyRow.of(key, now) for key in page],
            "can_write": seat.can(Role.DEVELOPER),
            "can_live": seat.can(Role.ADMIN),
        },
    )


@member_view(Role.DEVELOPER)
def key_create(request: HttpRequest, seat: Seat) -> HttpResponse:
    may_create_live = seat.can(Role.ADMIN)
    form = KeyCreateForm(request.POST or None, may_create_live=may_create_live)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            issued = identity.api_key_create(
                organization=seat.organization,
                livemode=form.livemode,
                scopes=form.granted_scopes,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at,
                created_by=seat.user,
            )
            api_key = issued.api_key
            audit(
                request,
                seat,
                "api_key.created",
                target=api_key.id,
                detail={
                    "key": api_key.redacted,
                    "name": api_key.name,
                    "livemode": api_key.livemode,
                    "restricted": api_key.restricted,
                    "scopes": api_key.scopes,
                    "expires_at": iso(api_key.expires_at),
                },
            )
        secret_keep(request, target=api_key.id, secret=issued.secret)
        return redirect("key-created", key_id=api_key.id)
    return render(request, "developers/keys/create.html", {"form": form})


@member_view(Role.DEVELOPER)
@require_GET
def key_created(request: HttpRequest, seat: Seat, key_id: str) -> HttpResponse:
    api_key = organization_key(seat, key_id)
    secret = secret_take(request, target=api_key.id)
    return secret_page(
        render(request, "developers/keys/created.html", {"key": api_key, "secret": secret})
    )


@member_view(Role.DEVELOPER)
def key_rotate(request: HttpRequest, seat: Seat, key_id: str) -> HttpResponse:
    api_key = organization_key(seat, key_id, to_change=True)
    row = KeyRow.of(api_key, timezone.now())
    form = KeyRotateForm(request.POST or None)
    if request.method == "POST" and not row.rotatable:
        messages.error(request, _("Only an active key can be rotated."))
        return redirect("keys")
    if request.method != "POST" or not form.is_valid():
        return render(request, "developers/keys/rotate.html", {"row": row, "form": form})
    try:
        with transaction.atomic():
            issued = identity.api_key_rotate(
                api_key=api_key, grace=form.grace_period, created_by=seat.user
            )
            api_key.refresh_from_db()
            audit(
                request,
                seat,
                "api_key.rotated",
                target=api_key.id,
                detail={
                    "key": api_key.redacted,
                    "new_key_id": issued.api_key.id,
                    "new_key": issued.api_key.redacted,
                    "grace_seconds": int(form.grace_period.total_seconds()),
                    "old_key_valid_until": iso(api_key.expires_at),
                },
            )
    except identity.APIKeyError as error:
        messages.error(request, str(error))
        return redirect("keys")
    secret_keep(request, target=issued.api_key.id, secret=issued.secret)
    if form.grace_period:
        messages.success(
            request,
            _("Rotated. The old key %(key)s works until %(until)s.")
            % {"key": api_key.redacted, "until": utc(api_key.expires_at)},
        )
    else:
        messages.success(
            request, _("Rotated. The old key %(key)s no longer works.") % {"key": api_key.redacted}
        )
    return redirect("key-created", key_id=issued.api_key.id)


@member_view(Role.DEVELOPER)
def key_revoke(request: HttpRequest, seat: Seat, key_id: str) -> HttpResponse:
    api_key = organization_key(seat, key_id, to_change=True)
    row = KeyRow.of(api_key, timezone.now())
    if request.method != "POST":
        return render(request, "developers/keys/revoke.html", {"row": row})
    if not row.revocable:
        messages.error(request, _("This key no longer works; there is nothing to revoke."))
        return redirect("keys")
    with transaction.atomic():
        identity.api_key_revoke(api_key=api_key)
        audit(
            request,
            seat,
            "api_key.revoked",
            target=api_key.id,
            detail={"key": api_key.redacted, "name": api_key.name},
        )
    messages.success(
        request, _("Revoked %(key)s. It is refused from now on.") % {"key": api_key.redacted}
    )
    return redirect("keys")


urlpatterns = [
    path("keys/", key_list, name="keys"),
    path("keys/new/", key_create, name="key-create"),
    path("keys/<str:key_id>/created/", key_created, name="key-created"),
    path("keys/<str:key_id>/rotate/", key_rotate, name="key-rotate"),
    path("keys/<str:key_id>/revoke/", key_revoke, name="key-revoke"),
]
