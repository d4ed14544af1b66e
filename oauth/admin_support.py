"""What every admin page shares: who may see and do what, scoping of every query to the
staff member's organizations, the audit trail, and the small helpers of the lists.

Permissions come from memberships, never from Django's per-model permission tables: any
member of an organization may look at its books, an admin or owner may move its money,
a developer or higher may see its credentials. Platform superusers see everything, but
the books stay read-only for them too: money moves only through the admin actions,
which call the same services as the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import models, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ledger.models import Account
from ledger.selectors import currency_exponents
from oauth import services as identity
from oauth.models import Membership, Organization, Role, User

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise

M = TypeVar("M", bound=models.Model)
P = TypeVar("P", bound=models.Model)

# Each role may do what the roles after it may do.
RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}
# An admin action changes at most this many rows at once: money is moved with care.
MAX_ACTION_ROWS = 100


# Who may do what ----------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """A staff member's reach in the admin: every organization they belong to, with their
    role there. Superusers reach every organization."""

    superuser: bool
    roles: dict[str, Role]

    def organizations(self, role: Role) -> list[str]:
        """The organizations where this person holds `role` or a higher one."""
        return sorted(org for org, held in self.roles.items() if RANK[held] >= RANK[role])

    def may(self, role: Role, organization_id: str | None = None) -> bool:
        """Whether they hold `role` in `organization_id` (in any organization if None)."""
        if self.superuser:
            return True
        if organization_id is None:
            return bool(self.organizations(role))
        held = self.roles.get(organization_id)
        return held is not None and RANK[held] >= RANK[role]


NO_ACCESS = Access(superuser=False, roles={})


def access_for(request: HttpRequest) -> Access:
    """Read once per request: every check on the page uses the same answer."""
    cached = getattr(request, "_openpay_admin_access", None)
    if isinstance(cached, Access):
        return cached
    user = request.user
    access = NO_ACCESS
    if isinstance(user, User) and user.is_active and user.is_staff:
        roles = {
            organization_id: Role(role)
            for organization_id, role in Membership.objects.filter(user=user).values_list(
                "organization_id", "role"
            )
        }
        access = Access(superuser=user.is_superuser, roles=roles)
    request._openpay_admin_access = access  # type: ignore[attr-defined]
    return access


def acting_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # the admin site lets only signed-in staff this far
        raise Http404
    return user


def audit(
    request: HttpRequest,
    action: str,
    *,
    organization_id: str,
    target: str = "",
    detail: dict[str, object] | None = None,
) -> None:
    """One line of the audit log for something done in the admin. Call it inside the
    transaction of the change, so that both commit or neither does."""
    identity.audit_record(
        action=action,
        actor=acting_user(request),
        organization_id=organization_id,
        target=target,
        detail={"via": "admin", **(detail or {})},
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


# Formatting ---------------------------------------------------------------------------


def money(amount: int | None, currency: str) -> str:
    """Minor units as the currency writes them: 1050 USD is "10.50 USD", 1050 JPY is
    "1,050 JPY", 1050 KWD is "1.050 KWD"."""
    if amount is None:
        return "—"
    exponent = currency_exponents().get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):,.{exponent}f} {currency}"


def money_html(amount: int | None, currency: str) -> SafeString:
    return format_html('<span class="op-amount">{}</span>', money(amount, currency))


TONES = {
    "ok": {"open", "settled", "succeeded", "enabled", "active", "live"},
    "wait": {"pending", "frozen", "expiring", "test"},
    "bad": {"failed", "revoked", "disabled"},
}


def badge(value: str, label: _StrOrPromise | None = None) -> SafeString:
    tone = next((tone for tone, values in TONES.items() if value in values), "plain")
    return format_html('<span class="op-badge op-{}">{}</span>', tone, label or value)


def mode_badge(livemode: bool) -> SafeString:
    return badge("live", _("live")) if livemode else badge("test", _("test"))


def path_value(obj: models.Model, path: str) -> Any:
    """Follow a lookup path such as "account__holder" on an instance."""
    value: Any = obj
    for part in path.split("__"):
        value = getattr(value, part)
    return value


# List filters that only ever offer the staff member's own rows --------------------------


class ModeFilter(admin.SimpleListFilter):
    title = _("mode")
    parameter_name = "mode"
    field_path: ClassVar[str] = "livemode"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, _StrOrPromise]]:
        return [("live", _("live")), ("test", _("test"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("live", "test"):
            return queryset.filter(**{self.field_path: self.value() == "live"})
        return queryset


class AccountModeFilter(ModeFilter):
    field_path = "account__livemode"


class OrganizationFilter(admin.SimpleListFilter):
    """Only the organizations the staff member belongs to (every one for superusers)."""

    title = _("organization")
    parameter_name = "organization"

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        self.tenant_field: str = getattr(model_admin, "tenant_field", "organization_id")
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        access = access_for(request)
        organizations = Organization.objects.order_by("name")
        if not access.superuser:
            allowed = access.organizations(getattr(model_admin, "view_role", Role.VIEWER))
            if len(allowed) < 2:
                return []  # nothing to choose between
            organizations = organizations.filter(id__in=allowed)
        return [(org.id, org.name) for org in organizations[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{self.tenant_field: value})
        return queryset


def own_accounts(request: HttpRequest) -> QuerySet[Account]:
    access = access_for(request)
    accounts = Account.objects.all()
    if not access.superuser:
        accounts = accounts.filter(holder__in=access.organizations(Role.VIEWER))
    return accounts


class CurrencyFilter(admin.SimpleListFilter):
    """The currencies of the staff member's own accounts: cheap (accounts, not entries)
    and never a glimpse of another organization's books."""

    title = _("currency")
    parameter_name = "currency"
    field_path: ClassVar[str] = "currency_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = own_accounts(request).order_by("currency_id").values_list("currency_id", flat=True)
        return [(code, code) for code in codes.distinct()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


class AccountCurrencyFilter(CurrencyFilter):
    field_path = "account__currency_id"


class AccountFilter(admin.SimpleListFilter):
    """The staff member's own accounts (a hundred at most: beyond that, search)."""

    title = _("account")
    parameter_name = "account"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        accounts = own_accounts(request).order_by("holder", "id")[:100]
        return [
            (account.id, f"{account.name or account.id} ({account.currency_id})")
            for account in accounts
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(account_id=self.value())
        return queryset


class DateRangeFilter(admin.ListFilter):
    """From and to dates (both included), as a small form in the filter sidebar."""

    title = _("date range")
    template = "admin/openpay/date_range_filter.html"
    field_path: ClassVar[str] = "created_at"

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    @property
    def from_name(self) -> str:
        return f"{self.field_path}_from"

    @property
    def to_name(self) -> str:
        return f"{self.field_path}_to"

    def expected_parameters(self) -> list[str | None]:
        return [self.from_name, self.to_name]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        start = self.used_parameters.get(self.from_name)
        end = self.used_parameters.get(self.to_name)
        try:
            if start:
                queryset = queryset.filter(**{f"{self.field_path}__gte": day_start(str(start))})
            if end:
                following = day_start(str(end)) + dt.timedelta(days=1)
                queryset = queryset.filter(**{f"{self.field_path}__lt": following})
        except ValueError as error:
            # The list says "incorrect lookup parameters" instead of failing.
            raise IncorrectLookupParameters(error) from error
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        kept = [
            (name, value)
            for name, values in changelist.params.items()
            if name not in (self.from_name, self.to_name)
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "from_name": self.from_name,
            "to_name": self.to_name,
            "from_value": self.used_parameters.get(self.from_name, ""),
            "to_value": self.used_parameters.get(self.to_name, ""),
            "kept": kept,
            "clear": changelist.get_query_string(remove=[self.from_name, self.to_name]),
            "selected": bool(self.used_parameters),
        }


def day_start(value: str | dt.date) -> dt.datetime:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# The admin classes ----------------------------------------------------------------------


class TenantAdmin(admin.ModelAdmin[M]):
    """A ModelAdmin whose every read is scoped to the staff member's organizations.

    `tenant_field` is the lookup from the model to the organization id that owns a row
    ("holder", "organization_id", "account__holder", ...). Another organization's row is
    a 404 wherever it is asked for: change view, history, delete, autocomplete, actions.
    Nothing may be added, changed or deleted unless a subclass says so.
    """

    tenant_field: ClassVar[str] = "organization_id"
    view_role: ClassVar[Role] = Role.VIEWER
    # JSON fields searched as text (metadata), besides `search_fields`.
    json_search_fields: ClassVar[tuple[str, ...]] = ()
    # The noun of the audit lines written for changes made through forms: "application"
    # gives application.created, application.updated and application.deleted.
    audit_noun: ClassVar[str] = ""
    # Newest first (ids are time-ordered), and a stable order for every paginated list.
    ordering = ("-pk",)

    # Scoping ---------------------------------------------------------------------------

    def scope(self, request: HttpRequest, queryset: QuerySet[M], role: Role) -> QuerySet[M]:
        access = access_for(request)
        if access.superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": access.organizations(role)})

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        return self.scope(request, super().get_queryset(request), self.view_role)

    def tenant_of(self, obj: M) -> str:
        return str(path_value(obj, self.tenant_field))

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> M | None:
        found = super().get_object(request, object_id, from_field)
        if found is None:
            # Django would redirect to the index saying the object may have been deleted;
            # another organization's object must look exactly like one that never existed.
            raise Http404
        return found

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*super().get_search_fields(request), *map(_text_alias, self.json_search_fields)]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[M], search_term: str
    ) -> tuple[QuerySet[M], bool]:
        if search_term and self.json_search_fields:
            # JSON searched as its text: jsonb::text on PostgreSQL, the stored text on SQLite.
            queryset = queryset.alias(
                **{
                    _text_alias(name): Cast(name, output_field=TextField())
                    for name in self.json_search_fields
                }
            )
        return super().get_search_results(request, queryset, search_term)

    # Permissions -------------------------------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access_for(request).may(self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        organization = None if obj is None else self.tenant_of(obj)
        return access_for(request).may(self.view_role, organization)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    # Actions -----------------------------------------------------------------------------

    def rows_for_action(
        self, request: HttpRequest, queryset: QuerySet[M], role: Role
    ) -> list[M] | None:
        """The rows an action was asked to change, each one checked again against what
        this person may do (`role`) in its organization. If any selected row is not
        theirs to change, nothing is done: the answer is None and a message says why."""
        if request.POST.get("select_across") == "1":
            self.message_user(
                request, gettext("Select the rows one by one for this action."), messages.ERROR
            )
            return None
        selected = set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
        if len(selected) > MAX_ACTION_ROWS:
            self.message_user(
                request,
                gettext("At most %(count)d rows at a time.") % {"count": MAX_ACTION_ROWS},
                messages.ERROR,
            )
            return None
        rows = list(self.scope(request, queryset, role).filter(pk__in=selected).order_by("pk"))
        if {str(row.pk) for row in rows} != selected:
            self.message_user(
                request,
                gettext("Nothing was done: not every selected row is yours to change."),
                messages.ERROR,
            )
            return None
        return rows

    def confirmation(
        self,
        request: HttpRequest,
        *,
        title: _StrOrPromise,
        question: _StrOrPromise,
        items: list[tuple[str, str]],
        form: forms.Form | None = None,
        button: _StrOrPromise | None = None,
    ) -> TemplateResponse:
        """The page between choosing an action and doing it: what will happen to which
        rows, a form if the action needs one (a refund's reason), and a confirm button
        that posts the same selection back with `confirm`."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "question": question,
            "items": items,
            "form": form,
            "button": button or gettext("Yes, I'm sure"),
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.opts,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/openpay/confirm_action.html", context)

    # The audit trail of changes made through forms ---------------------------------------

    def _audit_form_change(self, request: HttpRequest, obj: M, verb: str, message: Any) -> None:
        noun = self.audit_noun or self.opts.model_name
        audit(
            request,
            f"{noun}.{verb}",
            organization_id=self.tenant_of(obj),
            target=str(obj.pk),
            detail={"change": message} if message else {},
        )

    def log_addition(self, request: HttpRequest, obj: M, message: Any) -> LogEntry:
        entry = super().log_addition(request, obj, message)
        self._audit_form_change(request, obj, "created", message)
        return entry

    def log_change(self, request: HttpRequest, obj: M, message: Any) -> LogEntry:
        entry = super().log_change(request, obj, message)
        self._audit_form_change(request, obj, "updated", message)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit_form_change(request, obj, "deleted", None)
        return entries


def _text_alias(json_field: str) -> str:
    return f"{json_field.replace('__', '_')}_text"


class ReadOnlyInline(admin.TabularInline[M, P]):
    """Rows shown under their parent, never edited; seen by whoever may see the parent."""

    extra = 0
    can_delete = False
    show_change_link = False

    def _parent(self) -> Any:
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._parent().has_view_permission(request, obj))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformAdmin(admin.ModelAdmin[Any]):
    """For the platform's own staff: superusers only, whatever Django's permission tables
    say, and every change audited. The site puts every ModelAdmin that does not know
    about tenants (Django's, django-oauth-toolkit's, django-otp's, django-axes') behind
    this, so that nothing registered later can leak one merchant's rows to another."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access_for(request).superuser and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).superuser and super().has_delete_permission(request, obj)

    def _audit(self, request: HttpRequest, obj: Any, verb: str, message: Any) -> None:
        audit(
            request,
            f"{self.opts.model_name}.{verb}",
            organization_id="",
            target=str(obj.pk),
            detail={"change": message} if message else {},
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, "created", message)
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        entry = super().log_change(request, obj, message)
        self._audit(request, obj, "updated", message)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, obj, "deleted", None)
        return entries

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        # Third-party actions (revoking OAuth tokens, say) are audited with the rows they
        # were run on, in the same transaction as their effect.
        with transaction.atomic():
            response = super().response_action(request, queryset)
            if isinstance(response, HttpResponseRedirect):
                audit(
                    request,
                    f"{self.opts.model_name}.{request.POST.get('action', 'action')}"[:64],
                    organization_id="",
                    detail={"ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)[:100]},
                )
        return response
