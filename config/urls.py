from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.http import FileResponse, HttpRequest
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import health
from oauth import views as oauth_views
from oauth.admin_site import OpenPayAdminSite

POSTMAN_COLLECTION = Path(settings.BASE_DIR) / "docs" / "openpay.postman_collection.json"


def postman_collection(request: HttpRequest) -> FileResponse:
    """The Postman collection generated from the schema (`make postman`)."""
    return FileResponse(
        POSTMAN_COLLECTION.open("rb"),
        as_attachment=True,
        filename="openpay.postman_collection.json",
        content_type="application/json",
    )


# The default site, with every registration already made on it, becomes ours: two-factor
# sign-in, tenant-safe registrations and the merchant's home (oauth/admin_site.py).
admin.site.__class__ = OpenPayAdminSite

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("v1/", include("payments.urls")),
    path("oauth/", include("oauth.urls")),
    path(
        ".well-known/oauth-authorization-server",
        oauth_views.authorization_server_metadata,
        name="oauth-metadata",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/postman.json", postman_collection, name="postman-collection"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("developers.urls")),
]
