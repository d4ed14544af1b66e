"""Forms of the team page, the invitation page and the organization switcher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from oauth.models import Role


def _role_choices(roles: Sequence[Role]) -> list[tuple[str, StrOrPromise]]:
    return [(role.value, role.label) for role in roles]


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, roles: Sequence[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the roles this person may grant are offered, and only those validate.
        cast(forms.ChoiceField, self.fields["role"]).choices = _role_choices(roles)
        self.fields["role"].initial = Role.DEVELOPER.value


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, roles: Sequence[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = _role_choices(roles)


class InvitationSignupForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(
        label=_("Password"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class OrganizationSwitchForm(forms.Form):
    organization_id = forms.CharField(label=_("Organization"), max_length=40)
