"""The page a developer lands on after signing in."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from developers.portal import Seat, member_view


@member_view()
def home(request: HttpRequest, seat: Seat) -> HttpResponse:
    return render(request, "developers/home.html", {"seat": seat})


urlpatterns = [path("", home, name="home")]
