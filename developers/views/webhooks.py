"""Webhook endpoints: add and edit them, watch every delivery, send a test event, replay,
and reach the signing secret only by typing the password again."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from developers.forms.webhooks import (
    DeliveryReplayForm,
    EndpointForm,
    PasswordForm,
    ReplaySinceForm,
    StatusForm,
)
from developers.portal import Seat, audit, member_view, secret_keep, secret_page, secret_take
from oauth.models import Role
from payments import webhooks
from payments.models import WebhookEndpoint
from payments.representations import event_json, iso

# A secret just made (endpoint added, secret rotated) waits here for the one page view
# that shows it, so that the POST can redirect and a reload does not repeat it.


def manage_role(*, livemode: bool) -> Role:
    """Live-mode endpoints receive real events: only admins and owners change them."""
    return Role.ADMIN if livemode else Role.DEVELOPER


def _endpoint(seat: Seat, endpoint_id: str) -> WebhookEndpoint:
    endpoint = webhooks.webhook_endpoint_get(
        organization_id=seat.organization.id, endpoint_id=endpoint_id
    )
    if endpoint is None:
        raise Http404
    return endpoint


def _managed_endpoint(seat: Seat, endpoint_id: str) -> WebhookEndpoint:
    endpoint = _endpoint(seat, endpoint_id)
    if not seat.can(manage_role(livemode=endpoint.livemode)):
        raise PermissionDenied
    return endpoint


def _reveal_form(request: HttpRequest, seat: Seat, data: Any = None) -> PasswordForm:
    return PasswordForm(
        data,
        request=request,
        user=seat.user,
        label=_("Your password, to reveal the secret"),
        auto_id="reveal_%s",
    )


def _rotate_form(request: HttpRequest, seat: Seat, data: Any = None) -> PasswordForm:
    return PasswordForm(
        data,
        request=request,
        user=seat.user,
        label=_("Your password, to rotate the secret"),
        auto_id="rotate_%s",
    )


def _detail(
    request: HttpRequest,
    seat: Seat,
    endpoint: WebhookEndpoint,
    *,
    secret: str | None = None,
    secret_is_new: bool = False,
    **forms: Any,
) -> HttpResponse:
    can_manage = seat.can(manage_role(livemode=endpoint.livemode))
    page = webhooks.webhook_deliveries_page(endpoint=endpoint, before=request.GET.get("before"))
    context = {
        "endpoint": endpoint,
        "disabled_by_failures": webhooks.endpoint_disabled_by_failures(endpoint),
        "previous_secret_until": endpoint.previous_secret_expires_at
        if endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > timezone.now()
        else None,
        "page": page,
        "before": request.GET.get("before", ""),
        "can_manage": can_manage,
        "secret": secret,
        "secret_is_new": secret_is_new,
        "reveal_form": forms.get("reveal_form") or _reveal_form(request, seat),
        "rotate_form": forms.get("rotate_form") or _rotate_form(request, seat),
        "replay_form": forms.get("replay_form") or ReplaySinceForm(auto_id="replay_%s"),
    }
    response = render(request, "developers/webhooks/detail.html", context)
    return secret_page(response) if secret else response


@member_view()
def webhook_list(request: HttpRequest, seat: Seat) -> HttpResponse:
    return render(
        request,
        "developers/webhooks/list.html",
        {
            "overviews": webhooks.webhook_endpoints_overview(organization_id=seat.organization.id),
            "can_add": seat.can(Role.DEVELOPER),
        },
    )


@member_view(Role.DEVELOPER)
def webhook_new(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = EndpointForm(
        request.POST if request.method == "POST" else None, can_go_live=seat.can(Role.ADMIN)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                endpoint = webhooks.webhook_endpoint_create(
                    organization_id=seat.organization.id,
                    livemode=data["mode"] == "live",
                    url=data["url"],
                    enabled_events=data["enabled_events"],
                    description=data["description"],
                )
                if not data["enabled"]:
                    webhooks.webhook_endpoint_update(endpoint=endpoint, status="disabled")
                audit(
                    request,
                    seat,
                    "webhook_endpoint.created",
                    target=endpoint.id,
                    detail={
                        "url": endpoint.url,
                        "livemode": endpoint.livemode,
                        "enabled_events": endpoint.enabled_events,
                    },
                )
        except webhooks.EndpointError as error:
            form.add_error(error.param if error.param in form.fields else None, str(error))
        else:
            secret_keep(request, target=endpoint.id, secret=endpoint.secret)
            messages.success(request, _("Endpoint added."))
            return redirect("webhook", endpoint_id=endpoint.id)
    return render(request, "developers/webhooks/form.html", {"form": form, "endpoint": None})


@member_view()
def webhook_detail(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(seat, endpoint_id)
    secret = secret_take(request, target=endpoint.id)
    return _detail(request, seat, endpoint, secret=secret, secret_is_new=secret is not None)


@member_view(Role.DEVELOPER)
def webhook_edit(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    current = {
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": endpoint.enabled_events,
        "status": endpoint.status,
    }
    form = EndpointForm(
        request.POST if request.method == "POST" else None,
        initial={**current, "enabled": endpoint.status == "enabled"},
        can_go_live=seat.can(Role.ADMIN),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        wanted = {
            "url": data["url"],
            "description": data["description"],
            "enabled_events": data["enabled_events"],
            "status": "enabled" if data["enabled"] else "disabled",
        }
        # Only what changed: re-saving an unchanged status would overwrite why the
        # endpoint was disabled.
        changes = {name: value for name, value in wanted.items() if value != current[name]}
        try:
            with transaction.atomic():
                if changes:
                    webhooks.webhook_endpoint_update(endpoint=endpoint, **changes)
                    audit(
                        request,
                        seat,
                        "webhook_endpoint.updated",
                        target=endpoint.id,
                        detail={"changed": sorted(changes)},
                    )
        except webhooks.EndpointError as error:
            form.add_error(error.param if error.param in form.fields else None, str(error))
        else:
            messages.success(request, _("Endpoint saved."))
            return redirect("webhook", endpoint_id=endpoint.id)
    return render(request, "developers/webhooks/form.html", {"form": form, "endpoint": endpoint})


@member_view(write_role=Role.DEVELOPER)
@require_POST
def webhook_status(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose enabled or disabled."))
        return redirect("webhook", endpoint_id=endpoint.id)
    status = form.cleaned_data["status"]
    with transaction.atomic():
        webhooks.webhook_endpoint_update(endpoint=endpoint, status=status)
        audit(
            request, seat, "webhook_endpoint.updated", target=endpoint.id, detail={"status": status}
        )
    messages.success(
        request, _("Endpoint enabled.") if status == "enabled" else _("Endpoint disabled.")
    )
    return redirect("webhook", endpoint_id=endpoint.id)


@member_view(write_role=Role.DEVELOPER)
@require_POST
def webhook_test(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    try:
        with transaction.atomic():
            event = webhooks.webhook_endpoint_test(endpoint=endpoint)
            audit(
                request,
                seat,
                "webhook_endpoint.test_sent",
                target=endpoint.id,
                detail={"event": event.id},
            )
    except webhooks.EndpointError:
        messages.error(request, _("Enable the endpoint before sending it a test event."))
    else:
        messages.success(
            request,
            _("Test event %(event)s sent: its delivery is listed below.") % {"event": event.id},
        )
    return redirect("webhook", endpoint_id=endpoint.id)


@member_view(write_role=Role.DEVELOPER)
@require_POST
def webhook_reveal(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    form = _reveal_form(request, seat, request.POST)
    if not form.is_valid():
        return _detail(request, seat, endpoint, reveal_form=form)
    with transaction.atomic():
        audit(
            request,
            seat,
            "webhook_endpoint.secret_revealed",
            target=endpoint.id,
            detail={"livemode": endpoint.livemode},
        )
    return _detail(request, seat, endpoint, secret=endpoint.secret)


@member_view(write_role=Role.DEVELOPER)
@require_POST
def webhook_rotate(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    # The new secret is shown at once, so rotating asks for the password as revealing
    # does: otherwise one click would hand a signing secret to a borrowed session.
    form = _rotate_form(request, seat, request.POST)
    if not form.is_valid():
        return _detail(request, seat, endpoint, rotate_form=form)
    with transaction.atomic():
        secret = webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        audit(
            request,
            seat,
            "webhook_endpoint.secret_rotated",
            target=endpoint.id,
            detail={"previous_secret_expires_at": iso(endpoint.previous_secret_expires_at)},
        )
    secret_keep(request, target=endpoint.id, secret=secret)
    messages.success(request, _("Secret rotated."))
    return redirect("webhook", endpoint_id=endpoint.id)


@member_view(write_role=Role.DEVELOPER)
@require_POST
def webhook_replay(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    form = ReplaySinceForm(request.POST, auto_id="replay_%s")
    if not form.is_valid():
        return _detail(request, seat, endpoint, replay_form=form)
    if endpoint.status != "enabled":
        messages.error(request, _("Enable the endpoint before replaying events to it."))
        return redirect("webhook", endpoint_id=endpoint.id)
    since = form.cleaned_data["since"]
    with transaction.atomic():
        count = webhooks.webhook_endpoint_replay(endpoint=endpoint, since=since)
        audit(
            request,
            seat,
            "webhook_endpoint.replayed",
            target=endpoint.id,
            detail={"since": iso(since), "deliveries": count},
        )
    messages.success(
        request,
        ngettext(
            "%(count)d event will be sent again.", "%(count)d events will be sent again.", count
        )
        % {"count": count},
    )
    return redirect("webhook", endpoint_id=endpoint.id)


@member_view()
def delivery_detail(
    request: HttpRequest, seat: Seat, endpoint_id: str, delivery_id: str
) -> HttpResponse:
    endpoint = _endpoint(seat, endpoint_id)
    delivery = webhooks.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    if delivery is None:
        raise Http404
    return render(
        request,
        "developers/webhooks/delivery.html",
        {
            "endpoint": endpoint,
            "delivery": delivery,
            "payload": json.dumps(event_json(delivery.event), indent=2, ensure_ascii=False),
            "can_manage": seat.can(manage_role(livemode=endpoint.livemode)),
        },
    )


@member_view(write_role=Role.DEVELOPER)
@require_POST
def delivery_replay(request: HttpRequest, seat: Seat, endpoint_id: str) -> HttpResponse:
    endpoint = _managed_endpoint(seat, endpoint_id)
    form = DeliveryReplayForm(request.POST)
    delivery = (
        webhooks.webhook_delivery_get(endpoint=endpoint, delivery_id=form.cleaned_data["delivery"])
        if form.is_valid()
        else None
    )
    if delivery is None:
        raise Http404
    if endpoint.status != "enabled":
        messages.error(request, _("Enable the endpoint before replaying events to it."))
        return redirect("webhook", endpoint_id=endpoint.id)
    with transaction.atomic():
        [replay] = webhooks.event_redeliver(event=delivery.event, endpoint=endpoint)
        audit(
            request,
            seat,
            "webhook_endpoint.replayed",
            target=endpoint.id,
            detail={"event": delivery.event_id, "delivery": replay.id},
        )
    messages.success(
        request, _("Event %(event)s will be sent again.") % {"event": delivery.event_id}
    )
    return redirect("webhook", endpoint_id=endpoint.id)


urlpatterns = [
    path("webhooks/", webhook_list, name="webhooks"),
    path("webhooks/new/", webhook_new, name="webhook-new"),
    path("webhooks/<str:endpoint_id>/", webhook_detail, name="webhook"),
    path("webhooks/<str:endpoint_id>/edit/", webhook_edit, name="webhook-edit"),
    path("webhooks/<str:endpoint_id>/status", webhook_status, name="webhook-status"),
    path("webhooks/<str:endpoint_id>/test", webhook_test, name="webhook-test"),
    path("webhooks/<str:endpoint_id>/reveal", webhook_reveal, name="webhook-reveal"),
    path("webhooks/<str:endpoint_id>/rotate", webhook_rotate, name="webhook-rotate"),
    path("webhooks/<str:endpoint_id>/replay", webhook_replay, name="webhook-replay"),
    path(
        "webhooks/<str:endpoint_id>/deliveries/replay",
        delivery_replay,
        name="webhook-delivery-replay",
    ),
    path(
        "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/",
        delivery_detail,
        name="webhook-delivery",
    ),
]
