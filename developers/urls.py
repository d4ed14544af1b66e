"""The portal. Each area's module under developers/views/ declares its own routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("developers.views.accounts")),
    path("", include("developers.views.dashboard")),
    path("", include("developers.views.guides")),
    path("", include("developers.views.keys")),
    path("", include("developers.views.apps")),
    path("", include("developers.views.requests")),
    path("", include("developers.views.sandbox")),
    path("", include("developers.views.team")),
    path("", include("developers.views.webhooks")),
]
