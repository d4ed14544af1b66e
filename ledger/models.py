"""The books. Balances are stored on the account and moved only by ledger.services,
under row locks; on PostgreSQL the invariants below are also enforced by the database
itself (constraints here, triggers in migration 0002)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from common.ids import PrefixedIdField

MAX_AMOUNT = 2**63 - 1  # PostgreSQL bigint.


class Currency(models.Model):
    """An ISO 4217 currency with its minor-unit exponent (JPY 0, USD 2, KWD 3)."""

    code = models.CharField(max_length=3, primary_key=True)
    exponent = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)

    class Meta:
        verbose_name_plural = "currencies"

    def __str__(self) -> str:
        return self.code


class AccountStatus(models.TextChoices):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class AccountKind(models.TextChoices):
    # A customer's money: never below its overdraft limit.
    CUSTOMER = "customer"
    # The platform's own side of the books (the source of test money, the outside
    # world): may go negative, so that money entering the books is still double entry.
    SYSTEM = "system"


class Account(models.Model):
    id = PrefixedIdField(prefix="acct")
    # An opaque reference to whoever holds the account; the ledger knows no tenants.
    holder = models.CharField(max_length=64)
    livemode = models.BooleanField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    kind = models.CharField(
        max_length=16, choices=AccountKind.choices, default=AccountKind.CUSTOMER
    )
    status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.OPEN
    )
    overdraft_limit = models.BigIntegerField(default=0)
    # Sum of the account's entries.
    posted = models.BigIntegerField(default=0, editable=False)
    # Sum of the pending transfers out of the account (holds).
    held = models.BigIntegerField(default=0, editable=False)
    # Number of entries so far: the `seq` of the newest entry.
    entry_count = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["holder", "livemode", "id"], name="account_holder_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_non_negative"),
            models.CheckConstraint(
                condition=Q(overdraft_limit__gte=0), name="account_overdraft_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(kind=AccountKind.SYSTEM)
                | Q(posted__gte=F("held") - F("overdraft_limit")),
                name="account_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AccountStatus.values), name="account_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="account_kind_valid"
            ),
            # One system account per purpose, currency and mode, however many workers
            # ask for it at once.
            models.UniqueConstraint(
                fields=["holder", "name", "currency", "livemode"],
                condition=Q(kind=AccountKind.SYSTEM),
                name="account_system_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def available(self) -> int:
        """What may be spent now: posted, less holds, plus the overdraft room."""
        return self.posted - self.held + self.overdraft_limit


class TransferStatus(models.TextChoices):
    PENDING = "pending"
    SETTLED = "settled"
    FAILED = "failed"
    VOIDED = "voided"
    REVERSED = "reversed"


class Settlement(models.TextChoices):
    AUTO = "auto"
    MANUAL = "manual"


class Transfer(models.Model):
    """Money moving from one account to another, in two phases: the hold at creation,
    the posting at settlement."""

    id = PrefixedIdField(prefix="tr")
    holder = models.CharField(max_length=64)
    livemode = models.BooleanField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    # Held at creation; `settled_amount` (≤ amount) is what was posted.
    amount = models.BigIntegerField()
    settled_amount = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.PENDING
    )
    settlement = models.CharField(max_length=8, choices=Settlement.choices, default=Settlement.AUTO)
    description = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The caller's own reference, unique per holder and mode: a repeat returns the
    # existing transfer instead of moving money twice.
    # NULL, not "", when absent: the unique index must ignore transfers without one.
    client_reference = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # Set on a pending transfer to make its settlement fail with this reason.
    fail_at_settlement = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=64, blank=True)
    # The settled transfer this one reverses.
    reversal_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversal"
    )
    # Bumped by every change of state, so that observers can order what they see.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["holder", "livemode", "id"], name="transfer_holder_idx"),
            models.Index(
                fields=["created_at"],
                name="transfer_auto_pending_idx",
                condition=Q(status="pending", settlement="auto"),
            ),
            models.Index(
                fields=["hold_expires_at"],
                name="transfer_expiring_idx",
                condition=Q(status="pending", hold_expires_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=Q(settled_amount__isnull=True)
                | (Q(settled_amount__gt=0) & Q(settled_amount__lte=F("amount"))),
                name="transfer_settled_within_amount",
            ),
            models.CheckConstraint(
                condition=~Q(source=F("destination")), name="transfer_distinct_accounts"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TransferStatus.values), name="transfer_status_valid"
            ),
            models.UniqueConstraint(
                fields=["holder", "livemode", "client_reference"],
                condition=Q(client_reference__isnull=False),
                name="transfer_client_reference_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class Entry(models.Model):
    """One side of a posting. Immutable: corrections are new postings."""

    id = PrefixedIdField(prefix="txn")
    # No index of its own: the unique (account, seq) index serves every lookup.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="entries")
    # Credit positive, debit negative, in the account currency's minor unit.
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    # The entry's position in its account's history: 1, 2, 3, ...
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_non_zero"),
            models.CheckConstraint(condition=Q(seq__gt=0), name="entry_seq_positive"),
            # Also the index that reads history newest first, at any depth.
            models.UniqueConstraint(fields=["account", "seq"], name="entry_account_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["account", "created_at", "seq"], name="entry_account_time_idx")
        ]

    def __str__(self) -> str:
        return self.id
