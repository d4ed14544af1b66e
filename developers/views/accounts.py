"""Signing up, in and out of the portal, password reset and change, and two-factor
sign-in."""

from __future__ import annotations

import time
from base64 import b32encode
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from developers import services
from developers.forms.accounts import (
    LoginCodeForm,
    LoginForm,
    PasswordChangeForm,
    ResendForm,
    SignupForm,
    TwoFactorDisableForm,
    TwoFactorEnableForm,
    VerifyForm,
)
from developers.portal import SESSION_ORGANIZATION, Seat, client_ip, member_view, seat_for
from developers.tokens import BadSignupLink, LinkProblem, signup_link_read
from ledger import selectors as books
from oauth import selectors as identity_read
from oauth.models import User

# Between the password and the code the user is not signed in: only their id waits in
# the session, for a few minutes.
PENDING_LOGIN = "developers.pending_login"
PENDING_LOGIN_SECONDS = 300
# The first key, between the click that created it and the page that shows it once.
WELCOME_KEY = "developers.welcome_key"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "behind login_required"
    return user


def _organization_id(request: HttpRequest, user: User) -> str:
    """Where a change to a person's sign-in lands in the audit log: the organization
    they are looking at, else their first, else none."""
    seat = seat_for(request) if request.user == user else None
    if seat is not None:
        return seat.organization.id
    membership = identity_read.user_memberships(user=user).first()
    return membership.organization_id if membership is not None else ""


# Logging in ---------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Username or e-mail and password; then, for someone with two-factor sign-in on,
    a code on the next page before they are signed in."""

    form_class = LoginForm  # type: ignore[assignment]
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if services.two_factor_device(user=user) is None:
            return super().form_valid(form)
        self.request.session[PENDING_LOGIN] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "expires": time.time() + PENDING_LOGIN_SECONDS,
        }
        return redirect("login-otp")


def _pending_login(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    pending = request.session.get(PENDING_LOGIN)
    if not isinstance(pending, dict) or pending.get("expires", 0) < time.time():
        request.session.pop(PENDING_LOGIN, None)
        return None
    user = User.objects.filter(pk=int(pending.get("user", 0)), is_active=True).first()
    if user is None:
        request.session.pop(PENDING_LOGIN, None)
        return None
    return user, pending


@sensitive_post_parameters("code")
@never_cache
def login_otp(request: HttpRequest) -> HttpResponse:
    found = _pending_login(request)
    if found is None:
        messages.info(request, _("Log in again to continue."))
        return redirect("login")
    user, pending = found
    form = LoginCodeForm(request, user, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        del request.session[PENDING_LOGIN]
        login(request, user, backend=pending["backend"])
        otp_login(request, form.device)
        return HttpResponseRedirect(pending["next"])
    if getattr(request, "axes_locked_out", False):
        # Locked out: back to the password, after the cool-off.
        request.session.pop(PENDING_LOGIN, None)
    return render(request, "registration/otp_login.html", {"form": form})


# Signing up ---------------------------------------------------------------------------


@sensitive_post_parameters("password")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        if not services.signup_mail_allowed(email=data["email"]):
            form.add_error("email", _("Too many e-mails to this address. Try again in an hour."))
            return render(request, "registration/signup.html", {"form": form}, status=429)
        services.developer_signup(
            name=data["name"],
            email=data["email"],
            organization_name=data["organization_name"],
            password=data["password"],
        )
        return redirect("signup-sent")
    return render(request, "registration/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_sent.html")


def signup_resend(request: HttpRequest) -> HttpResponse:
    form = ResendForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        email = form.cleaned_data["email"]
        if not services.signup_mail_allowed(email=email):
            form.add_error("email", _("Too many e-mails to this address. Try again in an hour."))
            return render(request, "registration/signup_resend.html", {"form": form}, status=429)
        services.developer_signup_resend(email=email)
        return redirect("signup-sent")
    return render(request, "registration/signup_resend.html", {"form": form})


def _bad_link(request: HttpRequest, problem: LinkProblem) -> HttpResponse:
    return render(
        request, "registration/verify_invalid.html", {"problem": problem.value}, status=400
    )


@never_cache
def verify_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Opening the link shows what is about to be created; the button (a POST) creates
    it. Mail scanners open links on their own, and must neither use up the one-time
    link nor be shown the new key."""
    try:
        link = signup_link_read(uidb64=uidb64, token=token)
    except BadSignupLink as bad:
        return _bad_link(request, bad.problem)
    if request.method != "POST":
        form = VerifyForm(initial={"organization_name": link.organization_name})
        return render(request, "registration/verify.html", {"form": form, "email": link.user.email})
    form = VerifyForm(request.POST)
    if not form.is_valid():
        return render(request, "registration/verify.html", {"form": form, "email": link.user.email})
    try:
        welcome = services.developer_signup_complete(
            user=link.user,
            organization_name=form.cleaned_data["organization_name"],
            ip_address=client_ip(request),
        )
    except services.SignupAlreadyCompleted:
        return _bad_link(request, LinkProblem.USED)
    login(request, welcome.user, backend=MODEL_BACKEND)
    request.session[SESSION_ORGANIZATION] = welcome.organization.id
    request.session[WELCOME_KEY] = {
        "id": welcome.api_key.api_key.id,
        "secret": welcome.api_key.secret,
    }
    return redirect("welcome")


@never_cache
@member_view()
def welcome(request: HttpRequest, seat: Seat) -> HttpResponse:
    # Popped: the key is in the session only until this page has shown it once.
    key = request.session.pop(WELCOME_KEY, None)
    accounts = books.accounts_of(holder=seat.organization.id, livemode=False).order_by(
        "currency_id", "created_at"
    )
    return render(request, "registration/welcome.html", {"key": key, "accounts": accounts})


# Passwords ----------------------------------------------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    email_template_name = "registration/password_reset_email.txt"

    def form_valid(self, form: Any) -> HttpResponse:
        if not services.signup_mail_allowed(email=form.cleaned_data["email"]):
            # The same answer as always: the page must not tell whether an account exists.
            return HttpResponseRedirect(self.get_success_url())
        # Links from PUBLIC_BASE_URL, not the Host header a client sent.
        self.extra_email_context = {"base_url": settings.PUBLIC_BASE_URL}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    # Not signed in after the reset: someone with two-factor sign-in still gives a code.
    post_reset_login = False

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.user
        services.password_change(
            user=user,
            password=form.cleaned_data["new_password1"],
            via="reset",
            organization_id=_organization_id(self.request, user),
            ip_address=client_ip(self.request),
        )
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = PasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["request"] = self.request
        return kwargs

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.user
        services.password_change(
            user=user,
            password=form.cleaned_data["new_password1"],
            via="change",
            organization_id=_organization_id(self.request, user),
            ip_address=client_ip(self.request),
        )
        # Other sessions end with the old password; this one carries on.
        update_session_auth_hash(self.request, user)
        return HttpResponseRedirect(self.get_success_url())


# Two-factor sign-in -------------------------------------------------------------------


def _qr_code(device: TOTPDevice) -> SafeString:
    image = qrcode.make(
        device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2
    )
    # Made here from the device's own otpauth URI: path data only, no text from users.
    return mark_safe(str(image.to_string(encoding="unicode")))  # noqa: S308


def _secret_for_typing(device: TOTPDevice) -> str:
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _security_page(
    request: HttpRequest, *, disable_form: TwoFactorDisableForm | None = None
) -> HttpResponse:
    user = _user(request)
    device = services.two_factor_device(user=user)
    if device is not None and disable_form is None:
        disable_form = TwoFactorDisableForm(request, user)
    return render(
        request,
        "developers/accounts/security.html",
        {"device": device, "disable_form": disable_form},
    )


@login_required
def security(request: HttpRequest) -> HttpResponse:
    return _security_page(request)


@login_required
@require_POST
def two_factor_start(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if services.two_factor_device(user=user) is not None:
        messages.info(request, _("Two-factor sign-in is already on."))
        return redirect("security")
    services.two_factor_start(user=user)
    return redirect("two-factor-setup")


@login_required
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    device = services.two_factor_pending_device(user=user)
    if device is None or services.two_factor_device(user=user) is not None:
        return redirect("security")
    form = TwoFactorEnableForm(device, request.POST if request.method == "POST" else None)
    if form.is_valid():
        services.two_factor_confirm(
            device=device,
            organization_id=_organization_id(request, user),
            ip_address=client_ip(request),
        )
        # This session proved the device just now, as a two-step login would have.
        otp_login(request, device)
        messages.success(request, _("Two-factor sign-in is on."))
        return redirect("security")
    return render(
        request,
        "developers/accounts/two_factor_setup.html",
        {"form": form, "qr_code": _qr_code(device), "secret": _secret_for_typing(device)},
    )


@login_required
@require_POST
@sensitive_post_parameters("password", "code")
def two_factor_disable(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    if services.two_factor_device(user=user) is None:
        return redirect("security")
    form = TwoFactorDisableForm(request, user, request.POST)
    if not form.is_valid():
        return _security_page(request, disable_form=form)
    services.two_factor_disable(
        user=user, organization_id=_organization_id(request, user), ip_address=client_ip(request)
    )
    messages.success(request, _("Two-factor sign-in is off."))
    return redirect("security")


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("login/verify/", login_otp, name="login-otp"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", signup, name="signup"),
    path("signup/sent/", signup_sent, name="signup-sent"),
    path("signup/resend", signup_resend, name="signup-resend"),
    path("verify/<str:uidb64>/<str:token>", verify_email, name="verify-email"),
    path("welcome/", welcome, name="welcome"),
    path("password-reset/", PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/security/", security, name="security"),
    path("account/security/two-factor/start", two_factor_start, name="two-factor-start"),
    path("account/security/two-factor/", two_factor_setup, name="two-factor-setup"),
    path("account/security/two-factor/disable", two_factor_disable, name="two-factor-disable"),
    path("account/password/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
