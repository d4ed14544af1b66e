from django.contrib.auth import views as auth_views
from django.urls import path

from developers import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("docs/", views.docs_index, name="docs"),
    path("docs/<slug:slug>", views.docs_page, name="docs-page"),
    path("authorized-apps/", views.authorized_apps, name="authorized-apps"),
    path(
        "authorized-apps/<str:consent_id>/revoke",
        views.authorized_app_revoke,
        name="authorized-app-revoke",
    ),
]
