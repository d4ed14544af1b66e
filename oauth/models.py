from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AbstractApplication

from common.ids import PrefixedIdField


class User(AbstractUser):
    """A person. Logs into the portal, and into /admin/ when `is_staff`."""

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=~models.Q(email=""), name="user_email_unique_ci"
            )
        ]


class Organization(models.Model):
    """The tenant: a merchant or a developer's company. Owns everything else."""

    id = PrefixedIdField(prefix="org")
    name = models.CharField(max_length=200)
    # Requests per second per credential; None means the platform default.
    api_rate_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members: models.ManyToManyField[User, Membership] = models.ManyToManyField(
        User, through="Membership", related_name="organizations"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    DEVELOPER = "developer", _("Developer")
    VIEWER = "viewer", _("Viewer")


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.organization}"


class Application(AbstractApplication):
    """A third-party app: an OAuth client owned by an organization, which also holds
    the organization's API keys and webhook endpoints."""

    id = PrefixedIdField(prefix="app")
    # Annotated by hand: the base class comes untyped from django-oauth-toolkit.
    organization: models.ForeignKey[Organization, Organization] = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="applications"
    )
    description: models.TextField[str, str] = models.TextField(blank=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def redirect_uri_allowed(self, uri: str) -> bool:
        # Exactly one of the registered URIs, character for character: no prefix match,
        # and no RFC 8252 port freedom for loopback addresses either.
        return uri in self.redirect_uris.split()

    def allows_grant_type(self, *grant_types: str) -> bool:
        # Users grant access with the authorization code (and its refresh tokens); a
        # confidential client may also act for its own organization with
        # client_credentials. Implicit and password grants are never allowed.
        allowed = {self.GRANT_AUTHORIZATION_CODE}
        if self.client_type == self.CLIENT_CONFIDENTIAL:
            allowed.add(self.GRANT_CLIENT_CREDENTIALS)
        return bool(allowed & set(grant_types))


class Scope(models.TextChoices):
    # The labels are what a user reads on the consent screen.
    ACCOUNTS_READ = "accounts:read", _("See your accounts and their balances")
    ACCOUNTS_WRITE = "accounts:write", _("Open new accounts")
    TRANSACTIONS_READ = "transactions:read", _("See the transactions on your accounts")
    TRANSFERS_READ = "transfers:read", _("See your transfers")
    TRANSFERS_WRITE = "transfers:write", _("Move money: make, settle, void and refund transfers")
    WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhook endpoints")
    EVENTS_READ = "events:read", _("See events")


class APIKey(models.Model):
    """A secret (`sk_`) or restricted (`rk_`) key. Only an HMAC of the key is stored;
    the key itself is shown once, at creation."""

    id = PrefixedIdField(prefix="key")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    livemode = models.BooleanField()
    restricted = models.BooleanField(default=False)
    # What identifies the key to people: "sk_test_" and its last four characters.
    prefix = models.CharField(max_length=16)
    last4 = models.CharField(max_length=4)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The key that replaced this one when it was rotated.
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"], name="apikey_org_idx")]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.redacted

    @property
    def redacted(self) -> str:
        return f"{self.prefix}…{self.last4}"


class Consent(models.Model):
    """What a user granted a third-party application: which scopes, on which accounts of
    which organization. Its tokens never reach further."""

    id = PrefixedIdField(prefix="cns")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consents")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consents")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="consents"
    )
    livemode = models.BooleanField(default=False)
    scopes = models.JSONField(default=list)
    # Ledger account ids (acct_…) the user chose to share.
    account_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "application"],
                condition=models.Q(revoked_at__isnull=True),
                name="consent_one_active_per_user_and_application",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.application}"


class AuditEntry(models.Model):
    """Who did what to whose books or credentials, when, and from where. Written by the
    portal and the admin in the same transaction as the change; never edited (the
    database refuses UPDATE and DELETE on PostgreSQL)."""

    id = PrefixedIdField(prefix="aud")
    # Plain ids, not foreign keys: the record must outlive whatever it names.
    organization_id = models.CharField(max_length=40, blank=True, db_index=True)
    actor_id = models.CharField(max_length=40, blank=True)
    actor = models.CharField(max_length=150, help_text="The username at the time, or 'system'.")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=64, blank=True, help_text="The id acted on.")
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}".strip()
