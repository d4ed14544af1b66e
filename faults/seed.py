"""`python -m faults.seed --organizations N`: the bank test's tenants, made through the
product's own services, printed as one JSON object.

Each organization gets an owner, the funded test-mode sandbox every new organization
gets (USD and EUR, payments.sandbox_open) and a test-mode secret key. Everything else
(more accounts, their funding, webhook endpoints) the harness does through the API.
Run it against the harness's own database only (DATABASE_URL): it refuses production.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.seed")
    parser.add_argument("--organizations", type=int, required=True)
    parser.add_argument("--prefix", default="faults")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction

    from ledger import selectors as books
    from oauth import services as identity
    from payments import services as payments

    if settings.PRODUCTION:
        print("faults.seed: refusing to seed a production deployment", file=sys.stderr)
        return 2

    organizations = []
    with transaction.atomic():
        for index in range(args.organizations):
            name = f"{args.prefix}-{index}"
            owner = identity.user_create(
                username=f"{name}-owner",
                email=f"{name}-owner@faults.openpay.test",
                password=secrets.token_urlsafe(24),
            )
            organization = identity.organization_create(name=f"Bank test {name}", owner=owner)
            payments.sandbox_open(holder=organization.id, currencies=("USD", "EUR"))
            key = identity.api_key_create(
                organization=organization, livemode=False, name="faults harness", created_by=owner
            )
            organizations.append(
                {
                    "id": organization.id,
                    "test_secret_key": key.secret,
                    "accounts": [
                        {"id": account.id, "currency": account.currency_id}
                        for account in books.accounts_of(
                            holder=organization.id, livemode=False
                        ).order_by("id")
                    ],
                }
            )
    print(json.dumps({"organizations": organizations}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
