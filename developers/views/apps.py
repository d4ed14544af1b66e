"""OAuth applications: register, edit, and rotate the client secret (shown once)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from developers.forms.apps import ApplicationCreateForm, ApplicationForm
from developers.portal import Seat, audit, member_view, secret_keep, secret_page, secret_take
from oauth import selectors as identity_read
from oauth import services as identity
from oauth.models import Application, Role


def organization_application(seat: Seat, app_id: str) -> Application:
    return get_object_or_404(
        identity_read.organization_applications(organization=seat.organization), id=app_id
    )


def errors_onto(form: Form, error: ValidationError) -> None:
    """A model's validation errors shown next to the form's fields, the rest above."""
    for field, field_messages in error.update_error_dict({}).items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


@member_view(Role.VIEWER, write_role=Role.DEVELOPER)
@require_GET
def app_list(request: HttpRequest, seat: Seat) -> HttpResponse:
    return render(
        request,
        "developers/apps/list.html",
        {
            "applications": identity_read.organization_applications(organization=seat.organization),
            "can_write": seat.can(Role.DEVELOPER),
        },
    )


@member_view(Role.DEVELOPER)
def app_create(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = ApplicationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                issued = identity.application_create(
                    organization=seat.organization,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    redirect_uris=form.cleaned_data["redirect_uris"],
                    confidential=form.confidential,
                    created_by=seat.user,
                )
                application = issued.application
                audit(
                    request,
                    seat,
                    "application.created",
                    target=application.id,
                    detail={
                        "name": application.name,
                        "client_id": application.client_id,
                        "client_type": application.client_type,
                        "redirect_uris": form.cleaned_data["redirect_uris"],
                    },
                )
        except ValidationError as error:
            errors_onto(form, error)
        else:
            if issued.client_secret:
                secret_keep(request, target=application.id, secret=issued.client_secret)
            messages.success(request, _("Application registered."))
            return redirect("app", app_id=application.id)
    return render(request, "developers/apps/create.html", {"form": form})


@member_view(Role.VIEWER, write_role=Role.DEVELOPER)
def app_detail(request: HttpRequest, seat: Seat, app_id: str) -> HttpResponse:
    application = organization_application(seat, app_id)
    before = {
        "name": application.name,
        "description": application.description,
        "redirect_uris": application.redirect_uris.split(),
    }
    form = ApplicationForm(
        request.POST or None,
        initial={**before, "redirect_uris": "\n".join(before["redirect_uris"])},
    )
    if request.method == "POST" and form.is_valid():
        changed = [field for field, value in before.items() if form.cleaned_data[field] != value]
        try:
            with transaction.atomic():
                identity.application_update(
                    application=application,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    redirect_uris=form.cleaned_data["redirect_uris"],
                )
                detail: dict[str, object] = {"changed": changed}
                if "redirect_uris" in changed:
                    # Who added which redirect URI is what an investigation asks first.
                    detail["redirect_uris"] = {
                        "before": before["redirect_uris"],
                        "after": form.cleaned_data["redirect_uris"],
                    }
                audit(request, seat, "application.updated", target=application.id, detail=detail)
        except ValidationError as error:
            application.refresh_from_db()
            errors_onto(form, error)
        else:
            messages.success(request, _("Application saved."))
            return redirect("app", app_id=application.id)
    return secret_page(
        render(
            request,
            "developers/apps/detail.html",
            {
                "application": application,
                "form": form,
                "secret": secret_take(request, target=application.id),
                "can_write": seat.can(Role.DEVELOPER),
                "confidential": application.client_type == Application.CLIENT_CONFIDENTIAL,
            },
        )
    )


@member_view(Role.DEVELOPER)
@require_POST
def app_rotate_secret(request: HttpRequest, seat: Seat, app_id: str) -> HttpResponse:
    application = organization_application(seat, app_id)
    if application.client_type != Application.CLIENT_CONFIDENTIAL:
        messages.error(request, _("A public client has no secret to rotate."))
        return redirect("app", app_id=application.id)
    with transaction.atomic():
        client_secret = identity.application_rotate_secret(application=application)
        audit(
            request,
            seat,
            "application.secret_rotated",
            target=application.id,
            detail={"client_id": application.client_id},
        )
    secret_keep(request, target=application.id, secret=client_secret)
    messages.success(request, _("New client secret issued. The old one no longer works."))
    return redirect("app", app_id=application.id)


urlpatterns = [
    path("apps/", app_list, name="apps"),
    path("apps/new/", app_create, name="app-create"),
    path("apps/<str:app_id>/", app_detail, name="app"),
    path("apps/<str:app_id>/rotate-secret/", app_rotate_secret, name="app-rotate-secret"),
]
