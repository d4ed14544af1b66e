"""What a member fills in to register or edit an OAuth application."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from oauth import services as identity

MAX_REDIRECT_URIS = 20

CLIENT_TYPE_CHOICES = [
    ("confidential", _("Confidential: runs on a server that can keep a client secret")),
    ("public", _("Public: a mobile or browser app; no secret, PKCE alone")),
]


class ApplicationForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=255,
        help_text=_("Users see it on the consent screen."),
    )
    description = forms.CharField(
        label=_("Description (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_(
            "One per line, matched exactly. https only; http only on 127.0.0.1 or [::1] "
            "during development. No fragments (#) or wildcards (*)."
        ),
    )

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()

    def clean_description(self) -> str:
        return str(self.cleaned_data["description"]).strip()

    def clean_redirect_uris(self) -> list[str]:
        # Split on any whitespace, as the model does when it reads them back: a URI with
        # a space in it could never be matched anyway.
        uris = list(dict.fromkeys(str(self.cleaned_data["redirect_uris"]).split()))
        if len(uris) > MAX_REDIRECT_URIS:
            raise ValidationError(
                _("At most %(count)d redirect URIs.") % {"count": MAX_REDIRECT_URIS}
            )
        try:
            identity.redirect_uris_check(uris)
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return uris


class ApplicationCreateForm(ApplicationForm):
    client_type = forms.ChoiceField(
        label=_("Client type"),
        choices=CLIENT_TYPE_CHOICES,
        initial="confidential",
        widget=forms.RadioSelect,
        help_text=_("It cannot be changed later."),
    )

    @property
    def confidential(self) -> bool:
        return bool(self.cleaned_data["client_type"] == "confidential")
