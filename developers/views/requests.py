"""The request log: every API call made with the organization's credentials, newest
first, with filters, each error linking to its entry in the error docs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from developers.forms.requests import RequestFilterForm, cursor_encode
from developers.portal import Seat, member_view
from payments import selectors as payments_read

PAGE_SIZE = 50


@member_view()
@require_safe
def request_log(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = RequestFilterForm(request.GET)
    rows, next_cursor, credentials = [], "", {}
    if form.is_valid():
        found = payments_read.requests_page(
            organization_id=seat.organization.id,
            filters=form.filters(),
            after=form.cleaned_data["cursor"],
            limit=PAGE_SIZE,
        )
        rows = found[:PAGE_SIZE]
        if len(found) > PAGE_SIZE:
            next_cursor = cursor_encode((rows[-1].created_at, rows[-1].id))
        credentials = payments_read.credential_labels(
            organization_id=seat.organization.id, requests=rows
        )
    return render(
        request,
        "developers/requests/list.html",
        {
            "form": form,
            "rows": [(row, credentials.get(row.credential_id)) for row in rows],
            "next_cursor": next_cursor,
            "first_page": not request.GET.get("cursor"),
        },
    )


urlpatterns = [path("requests/", request_log, name="requests")]
