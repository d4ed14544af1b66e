"""Forms for signing up, signing in and a person's sign-in security.

A wrong password or one-time code typed anywhere here counts as a failed login:
django-axes listens to `user_login_failed` and locks the username + address after too
many, so a second factor or a password prompt behind a session cannot be guessed at
more freely than the login page."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_stubs_ext import StrOrPromise

from oauth.models import User

# Long enough for any passphrase, short enough that hashing it stays cheap.
PASSWORD_MAX_LENGTH = 1024


def _credentials(user: User) -> dict[str, str]:
    return {"username": user.get_username()}


def attempt_allowed(request: HttpRequest, user: User) -> bool:
    """False while the user's username is locked out from this address."""
    return bool(AxesProxyHandler.is_allowed(request, _credentials(user)))


def attempt_failed(request: HttpRequest, user: User) -> None:
    user_login_failed.send(sender=__name__, credentials=_credentials(user), request=request)


def _verify(device: TOTPDevice, code: str) -> TOTPDevice | None:
    """The device, re-read under a row lock, if `code` is right: two requests carrying
    the same code at once cannot both be accepted."""
    verified: TOTPDevice | None = otp_verify_token(device.user, device.persistent_id, code)
    return verified


def _password_field(label: StrOrPromise, autocomplete: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class CodeField(forms.CharField):
    """Six digits from an authenticator app; spaces people type between groups are
    ignored."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            label=_("6-digit code"),
            error_messages={"invalid": _("Enter the 6 digits your app shows.")},
            widget=forms.TextInput(
                attrs={
                    "inputmode": "numeric",
                    "autocomplete": "one-time-code",
                    "pattern": "[0-9 ]*",
                    "maxlength": "7",
                }
            ),
            **kwargs,
        )

    def to_python(self, value: Any) -> str:
        text = str(super().to_python(value))
        return "".join(text.split())

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not (len(value) == 6 and value.isascii() and value.isdigit()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")


class SignupForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    organization_name = forms.CharField(
        label=_("Organization name"),
        max_length=200,
        help_text=_("Your company or project. You can invite your team later."),
    )
    password = _password_field(_("Password"), "new-password")
    accepted = forms.BooleanField(
        label=_("I accept the terms of service"),
        error_messages={"required": _("Accept the terms to create an account.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = password_validation.password_validators_help_text_html()

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        password = cleaned.get("password")
        if password:
            email = str(cleaned.get("email", ""))
            provisional = User(username=email, email=email, first_name=str(cleaned.get("name", "")))
            try:
                password_validation.validate_password(password, provisional)
            except ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ResendForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class VerifyForm(forms.Form):
    organization_name = forms.CharField(
        label=_("Organization name"),
        max_length=200,
        help_text=_("Your company or project. You can rename it later."),
    )


class LoginForm(forms.Form):
    """Username or e-mail, and password. Used by Django's LoginView in place of its
    AuthenticationForm."""

    username = forms.CharField(
        label=_("Username or e-mail"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = _password_field(_("Password"), "current-password")

    error_messages = {
        "invalid_login": _("That username, e-mail or password is not right."),
        "unverified": _("Verify your e-mail address first: open the link we sent you."),
    }

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user_cache: User | None = None
        # Set when the password was right but the e-mail address is not verified yet:
        # the page then offers to send the link again.
        self.unverified = False
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        login = cleaned.get("username")
        password = cleaned.get("password")
        if not login or not password:
            return cleaned
        # An e-mail address is turned into its username before authenticating, so that
        # django-axes counts failures for one name whichever of the two is typed.
        username = self._username(login)
        user = authenticate(self.request, username=username, password=password)
        if isinstance(user, User):
            self.user_cache = user
            return cleaned
        if self._unverified(username, password):
            self.unverified = True
            raise ValidationError(self.error_messages["unverified"], code="unverified")
        raise ValidationError(self.error_messages["invalid_login"], code="invalid_login")

    @staticmethod
    def _username(login: str) -> str:
        login = login.strip()
        if "@" in login:
            owner = User.objects.filter(email__iexact=login).only("username").first()
            if owner is not None:
                return owner.get_username()
        return login

    def _unverified(self, username: str, password: str) -> bool:
        # Only after a failed authenticate, and never while locked out: the hint must
        # not become a way to test passwords past the lockout.
        if self.request is None or getattr(self.request, "axes_locked_out", False):
            return False
        user = User.objects.filter(username=username, is_active=False, last_login=None).first()
        return user is not None and user.check_password(password)

    def get_user(self) -> User | None:
        return self.user_cache


class LoginCodeForm(forms.Form):
    """The second step of signing in, for someone with two-factor sign-in on."""

    code = CodeField()

    def __init__(self, request: HttpRequest, user: User, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user = user
        self.device: TOTPDevice | None = None
        super().__init__(*args, **kwargs)

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"]
        device = TOTPDevice.objects.filter(user=self.user, confirmed=True).first()
        if device is not None and attempt_allowed(self.request, self.user):
            allowed, _detail = device.verify_is_allowed()
            if not allowed:
                raise ValidationError(
                    _("Too many wrong codes. Wait a few seconds and try again."),
                    code="throttled",
                )
            verified = _verify(device, code)
            if verified is not None:
                self.device = verified
                return code
        attempt_failed(self.request, self.user)
        raise ValidationError(_("That code is not right."), code="wrong_code")


class TwoFactorEnableForm(forms.Form):
    code = CodeField(help_text=_("The code your app shows for OpenPay right now."))

    def __init__(self, device: TOTPDevice, *args: Any, **kwargs: Any) -> None:
        self.device = device
        super().__init__(*args, **kwargs)

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"]
        allowed, _detail = self.device.verify_is_allowed()
        if not allowed:
            raise ValidationError(
                _("Too many wrong codes. Wait a few seconds and try again."), code="throttled"
            )
        if _verify(self.device, code) is None:
            raise ValidationError(
                _("That code is not right. Check the time on your phone and try again."),
                code="wrong_code",
            )
        return code


class TwoFactorDisableForm(forms.Form):
    password = _password_field(_("Password"), "current-password")
    code = CodeField(help_text=_("The code your app shows for OpenPay right now."))

    def __init__(self, request: HttpRequest, user: User, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        password, code = cleaned.get("password"), cleaned.get("code")
        if not password or not code:
            return cleaned
        if not attempt_allowed(self.request, self.user):
            attempt_failed(self.request, self.user)
            raise ValidationError(_("Too many failed attempts."), code="locked")
        if not self.user.check_password(password):
            attempt_failed(self.request, self.user)
            self.add_error("password", _("That password is not right."))
            return cleaned
        device = TOTPDevice.objects.filter(user=self.user, confirmed=True).first()
        if device is None or _verify(device, code) is None:
            attempt_failed(self.request, self.user)
            self.add_error("code", _("That code is not right."))
        return cleaned


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form; a wrong current password also counts as a failed login."""

    def __init__(self, request: HttpRequest, user: User, *args: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        user: User = self.user
        if attempt_allowed(self.request, user) and user.check_password(old_password):
            return old_password
        attempt_failed(self.request, user)
        raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
