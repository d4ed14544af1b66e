"""The portal. Each area's module under developers/views/ declares its own routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("developers.views.accounts")),
    path("", include("developers.views.dashboard")),
    path("", include("developers.views.guides")),
]
