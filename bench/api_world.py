"""The tenant the API section calls as: an organization with its owner, a test-mode
secret key, and funded USD accounts, all made through the services."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from bench.ledger_world import CURRENCY, FUNDS, open_system, settle_all
from ledger import services as ledger
from oauth import services as identity


@dataclass(frozen=True)
class Tenant:
    organization_id: str
    # sk_test_…: every scope, test mode.
    secret_key: str
    account_ids: list[str]


def open_tenant(accounts: int) -> Tenant:
    """An organization with `accounts` test-mode USD accounts, each funded from a
    system account (batches of up to 1,000, then settled)."""
    owner = identity.user_create(
        username=f"bench-api-{secrets.token_hex(4)}",
        email="",
        password=secrets.token_urlsafe(24),
    )
    organization = identity.organization_create(name="Bench API", owner=owner)
    issued = identity.api_key_create(
        organization=organization, livemode=False, name="bench", created_by=owner
    )
    ids = [
        ledger.account_open(
            holder=organization.id, livemode=False, currency=CURRENCY, name=f"bench {n}"
        ).id
        for n in range(1, accounts + 1)
    ]
    funding = open_system("bench api funding")
    for start in range(0, accounts, ledger.MAX_BATCH):
        ledger.transfer_batch_create(
            holder=funding.holder,
            livemode=False,
            specs=[
                ledger.TransferSpec(funding.id, account_id, FUNDS, CURRENCY)
                for account_id in ids[start : start + ledger.MAX_BATCH]
            ],
        )
    settle_all()
    return Tenant(organization.id, issued.secret, ids)
