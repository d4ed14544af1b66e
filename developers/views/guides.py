"""The guides in docs/, rendered as public pages, and the applications a user has let in."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from developers import docs
from oauth import selectors as access
from oauth import services as identity


def docs_index(request: HttpRequest) -> HttpResponse:
    return render(request, "developers/docs_index.html", {"guides": docs.guides()})


def docs_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A guide from docs/, public like any API documentation."""
    page = docs.guide_html(slug)
    if page is None:
        raise Http404
    title, html = page
    return render(
        request,
        "developers/docs_page.html",
        {"title": title, "html": mark_safe(html), "guides": docs.guides()},  # noqa: S308 -- rendered from our own files with raw HTML off
    )


def docs_image(request: HttpRequest, name: str) -> FileResponse:
    path = docs.guide_image(name)
    if path is None:
        raise Http404
    response = FileResponse(path.open("rb"), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@login_required
def authorized_apps(request: HttpRequest) -> HttpResponse:
    """The third-party applications the signed-in user has let in, and what each may do."""
    return render(
        request,
        "developers/authorized_apps.html",
        {"consents": access.user_consents(user=request.user)},  # type: ignore[arg-type]
    )


@login_required
@require_POST
def authorized_app_revoke(request: HttpRequest, consent_id: str) -> HttpResponse:
    consent = access.user_consents(user=request.user).filter(id=consent_id).first()  # type: ignore[arg-type]
    if consent is None:
        raise Http404
    identity.consent_revoke(consent=consent)
    messages.success(
        request,
        _("%(app)s can no longer use your account.") % {"app": consent.application.name},
    )
    return redirect("authorized-apps")


urlpatterns = [
    path("docs/", docs_index, name="docs"),
    path("docs/<slug:slug>", docs_page, name="docs-page"),
    path("docs/img/<path:name>", docs_image, name="docs-image"),
    path("authorized-apps/", authorized_apps, name="authorized-apps"),
    path(
        "authorized-apps/<str:consent_id>/revoke",
        authorized_app_revoke,
        name="authorized-app-revoke",
    ),
]
