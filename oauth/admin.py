"""Identity in the admin: organizations and their members, applications, API keys and
the audit log, each scoped to the staff member's organizations (oauth.admin_support).

Merchant staff see their own rows; developers and up see the credentials and may edit
an application's name, description and redirect URIs, or revoke an API key. Members
are managed by the organization in the portal; here only superusers change them. Every
change is audited in the transaction that makes it.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from oauth import services as identity
from oauth.admin_support import (
    DateRangeFilter,
    ModeFilter,
    OrganizationFilter,
    PlatformAdmin,
    TenantAdmin,
    access_for,
    audit,
    badge,
    mode_badge,
)
from oauth.models import APIKey, Application, AuditEntry, Membership, Organization, Role, User


@admin.register(User)
class PlatformUserAdmin(PlatformAdmin, UserAdmin[User]):
    """People across every organization: the platform's superusers only."""


# Organizations and their members ---------------------------------------------------------


def owners_left(organization_id: str, *, without: Membership) -> bool:
    others = Membership.objects.filter(organization_id=organization_id, role=Role.OWNER)
    return others.exclude(pk=without.pk).exists()


class MembershipInlineFormSet(BaseInlineFormSet[Membership, Organization, Any]):
    def clean(self) -> None:
        super().clean()
        owners = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("role") == Role.OWNER
        ]
        if not owners:
            raise ValidationError(gettext("An organization keeps at least one owner."))


class MembershipInline(admin.TabularInline[Membership, Organization]):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).may(Role.VIEWER, None if obj is None else obj.id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin[Organization]):
    tenant_field = "id"
    list_display = ["name", "id", "created_at"]
    search_fields = ["id__exact", "name"]
    readonly_fields = ["id", "created_at"]
    fields = ["id", "name", "api_rate_limit", "created_at"]
    date_hierarchy = "created_at"
    inlines = [MembershipInline]
    audit_noun = "organization"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).superuser

    def has_change_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return access_for(request).superuser

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        # Membership changes are credential changes: one audit line each, in the
        # transaction of the change view.
        for membership in formset.new_objects:
            _audit_membership(request, membership, "created")
        for membership, _fields in formset.changed_objects:
            _audit_membership(request, membership, "updated")
        for membership in formset.deleted_objects:
            _audit_membership(request, membership, "deleted")


def _audit_membership(request: HttpRequest, membership: Membership, verb: str) -> None:
    audit(
        request,
        f"membership.{verb}",
        organization_id=membership.organization_id,
        target=str(membership.user_id),
        detail={"user": membership.user.get_username(), "role": membership.role},
    )


class MembershipForm(forms.ModelForm[Membership]):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean_role(self) -> str:
        role: str = self.cleaned_data["role"]
        existing = self.instance
        if (
            existing.pk
            and existing.role == Role.OWNER
            and role != Role.OWNER
            and not owners_left(existing.organization_id, without=existing)
        ):
            raise ValidationError(gettext("The last owner of an organization stays an owner."))
        return role


@admin.register(Membership)
class MembershipAdmin(TenantAdmin[Membership]):
    form = MembershipForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", OrganizationFilter]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    audit_noun = "membership"

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        # A membership is one person in one organization: change its role, or delete it.
        return ["user", "organization", "created_at"] if obj is not None else ["created_at"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).superuser

    def has_change_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        return access_for(request).superuser

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # The service locks the owners, so two changes at once never leave none.
        identity.membership_role_change(
            organization=obj.organization, user=obj.user, role=Role(obj.role)
        )

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        identity.membership_remove(organization=obj.organization, user=obj.user)

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        if not access_for(request).superuser:
            return False
        return (
            obj is None or obj.role != Role.OWNER or owners_left(obj.organization_id, without=obj)
        )


# Applications ------------------------------------------------------------------------------


class ApplicationForm(forms.ModelForm[Application]):
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line: https, or http on 127.0.0.1 or [::1] in development."),
    )

    class Meta:
        model = Application
        fields = ["name", "description", "redirect_uris"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["redirect_uris"] = "\n".join(self.instance.redirect_uris.split())

    def clean_redirect_uris(self) -> str:
        uris = str(self.cleaned_data["redirect_uris"]).split()
        try:
            identity.redirect_uris_check(uris)
        except ValidationError as error:
            raise ValidationError(error.message_dict.get("redirect_uris", error.messages)) from None
        return " ".join(uris)


# Registered by django-oauth-toolkit, through OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"].
class ApplicationAdmin(TenantAdmin[Application]):
    view_role = Role.DEVELOPER
    form = ApplicationForm
    list_display = ["name", "id", "organization", "client_type", "client_id", "created"]
    list_filter = ["client_type", OrganizationFilter]
    list_select_related = ["organization"]
    search_fields = ["id__exact", "name", "client_id__exact"]
    readonly_fields = [
        "id",
        "organization",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "skip_authorization",
        "created",
        "updated",
    ]
    fields = ["id", "organization", "name", "description", "redirect_uris", *readonly_fields[2:]]
    date_hierarchy = "created"
    audit_noun = "application"

    def has_change_permission(self, request: HttpRequest, obj: Application | None = None) -> bool:
        organization = None if obj is None else obj.organization_id
        return access_for(request).may(Role.DEVELOPER, organization)

    def has_delete_permission(self, request: HttpRequest, obj: Application | None = None) -> bool:
        return access_for(request).superuser

    def save_model(self, request: HttpRequest, obj: Application, form: Any, change: bool) -> None:
        identity.application_update(
            application=obj,
            name=obj.name,
            description=obj.description,
            redirect_uris=obj.redirect_uris.split(),
        )


# API keys ------------------------------------------------------------------------------------


def key_status(api_key: APIKey) -> str:
    now = timezone.now()
    if api_key.revoked_at is not None:
        return "revoked"
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return "expired"
    if api_key.replaced_by_id is not None:
        return "expiring"
    return "active"


class KeyStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("active", _("active")),
            ("expiring", _("expiring after rotation")),
            ("expired", _("expired")),
            ("revoked", _("revoked")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        alive = Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        conditions = {
            "active": alive & Q(replaced_by__isnull=True),
            "expiring": alive & Q(replaced_by__isnull=False),
            "expired": Q(revoked_at__isnull=True, expires_at__lte=now),
            "revoked": Q(revoked_at__isnull=False),
        }
        value = self.value()
        return queryset.filter(conditions[value]) if value in conditions else queryset


@admin.register(APIKey)
class APIKeyAdmin(TenantAdmin[APIKey]):
    """Keys by their prefix and last four characters only: the secret is never stored,
    and its digest is never shown."""

    view_role = Role.DEVELOPER
    list_display = [
        "key",
        "name",
        "mode",
        "kind",
        "status",
        "organization",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_filter = [ModeFilter, KeyStatusFilter, "restricted", OrganizationFilter, DateRangeFilter]
    list_select_related = ["organization", "created_by"]
    search_fields = ["id__exact", "name", "last4__exact"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "id",
        "key",
        "name",
        "organization",
        "application",
        "mode",
        "kind",
        "scope_list",
        "status",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "replaced_by",
    )
    actions = ["revoke"]

    @admin.display(description=_("key"))
    def key(self, api_key: APIKey) -> str:
        return api_key.redacted

    @admin.display(description=_("mode"))
    def mode(self, api_key: APIKey) -> SafeString:
        return mode_badge(api_key.livemode)

    @admin.display(description=_("kind"))
    def kind(self, api_key: APIKey) -> str:
        return gettext("restricted") if api_key.restricted else gettext("secret")

    @admin.display(description=_("scopes"))
    def scope_list(self, api_key: APIKey) -> SafeString:
        return format_html_join(" ", "<code>{}</code>", ((scope,) for scope in api_key.scopes))

    @admin.display(description=_("status"))
    def status(self, api_key: APIKey) -> SafeString:
        return badge(key_status(api_key))

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return access_for(request).may(Role.DEVELOPER)

    @admin.action(description=_("Revoke selected API keys…"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponseBase | None:
        keys = self.rows_for_action(request, queryset, Role.DEVELOPER)
        if keys is None:
            return None
        if "confirm" not in request.POST:
            return self.confirmation(
                request,
                title=_("Revoke API keys"),
                question=_("These keys stop working at once. Applications using them fail."),
                items=[(api_key.id, f"{api_key.redacted} {api_key.name}") for api_key in keys],
            )
        for api_key in keys:
            with transaction.atomic():
                identity.api_key_revoke(api_key=api_key)
                audit(
                    request,
                    "api_key.revoked",
                    organization_id=api_key.organization_id,
                    target=api_key.id,
                    detail={"key": api_key.redacted},
                )
        self.message_user(
            request,
            ngettext("Revoked %(count)d API key.", "Revoked %(count)d API keys.", len(keys))
            % {"count": len(keys)},
            messages.SUCCESS,
        )
        return None


# The audit log ---------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantAdmin[AuditEntry]):
    """Who did what, when, from where: read by an organization's admins and owners,
    written only by the code that makes the changes (PostgreSQL refuses UPDATE and
    DELETE on the table)."""

    view_role = Role.ADMIN
    list_display = ["created_at", "actor", "action", "target", "organization_id", "ip_address"]
    list_filter = ["action", OrganizationFilter, DateRangeFilter]
    search_fields = ["actor", "action", "target__exact", "id__exact"]
    json_search_fields = ("detail",)
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "id",
        "created_at",
        "actor",
        "actor_id",
        "action",
        "target",
        "organization_id",
        "ip_address",
        "detail_json",
    )
    show_full_result_count = False

    @admin.display(description=_("detail"))
    def detail_json(self, entry: AuditEntry) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(entry.detail, indent=2, sort_keys=True))
