from django.urls import path
from oauth2_provider import views as dot

from oauth import views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.ConsentView.as_view(), name="authorize"),
    path("token/", dot.TokenView.as_view(), name="token"),
    path("revoke_token/", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", views.IntrospectView.as_view(), name="introspect"),
]
