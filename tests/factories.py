"""Builders for test data, through the same services the product uses."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from oauth import services as identity
from oauth.models import Organization, Role, User

_counter = itertools.count()
PASSWORD = "a-long-test-password-42"


def make_user(name: str | None = None, **extra: bool) -> User:
    name = name or f"user{next(_counter)}"
    return identity.user_create(
        username=name, email=f"{name}@example.test", password=PASSWORD, **extra
    )


def make_organization(name: str = "Alice Ltd", owner: User | None = None) -> Organization:
    return identity.organization_create(name=name, owner=owner or make_user())


def add_member(organization: Organization, user: User, role: Role) -> None:
    identity.membership_set(organization=organization, user=user, role=role)


def log_request(
    organization: Organization,
    *,
    path: str = "/v1/accounts",
    method: str = "GET",
    status: int = 200,
    error_code: str = "",
    ago: dt.timedelta = dt.timedelta(minutes=1),
    at: dt.datetime | None = None,
    livemode: bool = False,
    credential_id: str = "key_unknown",
    application_id: str = "",
    flush: bool = True,
) -> str:
    """One request in the log (at `at`, else `ago` before now), written the way the API
    writes it: through the buffer when there is Redis, then flushed unless `flush` is
    False. Returns its request id."""
    from payments.requestlog import request_log_flush, request_log_record

    request_id = f"req_test{next(_counter):020d}"
    request_log_record(
        {
            "id": request_id,
            "organization_id": organization.id,
            "livemode": livemode,
            "application_id": application_id,
            "credential_id": credential_id,
            "method": method,
            "path": path,
            "status": status,
            "error_code": error_code,
            "latency_ms": 12.5,
            "created_at": (at or timezone.now() - ago).isoformat(),
        }
    )
    if flush:
        request_log_flush()
    return request_id


# Ledger -------------------------------------------------------------------------------

from ledger import services as ledger  # noqa: E402
from ledger.models import Account  # noqa: E402

HOLDER = "alice"


def system_account(currency: str = "USD", livemode: bool = False) -> Account:
    return ledger.system_account(purpose="test funding", currency=currency, livemode=livemode)


def open_account(
    currency: str = "USD",
    *,
    balance: int = 0,
    holder: str = HOLDER,
    livemode: bool = False,
    overdraft_limit: int = 0,
    funding: Account | None = None,
) -> Account:
    account = ledger.account_open(
        holder=holder, livemode=livemode, currency=currency, overdraft_limit=overdraft_limit
    )
    if balance:
        source = funding or system_account(currency, livemode)
        ledger.transfer_post(
            holder=source.holder,
            livemode=livemode,
            source_id=source.id,
            destination_id=account.id,
            amount=balance,
            currency=currency,
        )
    account.refresh_from_db()
    return account
