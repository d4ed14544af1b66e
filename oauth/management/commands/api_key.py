"""Operators' tool for API keys: create, list, rotate, revoke."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from oauth import services as identity
from oauth.models import APIKey, Organization, Scope


class Command(BaseCommand):
    help = "Create, list, rotate or revoke API keys. A new key is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a secret key, or restricted with --scope")
        create.add_argument("--organization", required=True, help="org_… id")
        create.add_argument("--live", action="store_true", help="live mode (default: test)")
        create.add_argument(
            "--scope", action="append", choices=Scope.values, help="restrict to this scope"
        )
        create.add_argument("--name", default="")
        create.add_argument("--expires-in-days", type=int)
        listing = actions.add_parser("list")
        listing.add_argument("--organization", required=True)
        rotate = actions.add_parser("rotate", help="a new key; the old one lives --grace-hours")
        rotate.add_argument("key_id")
        rotate.add_argument("--grace-hours", type=float, default=24)
        revoke = actions.add_parser("revoke", help="end a key at once")
        revoke.add_argument("key_id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except identity.APIKeyError as error:
            raise CommandError(str(error)) from None

    def _create(self, options: dict[str, Any]) -> None:
        organization = self._organization(options["organization"])
        days = options["expires_in_days"]
        issued = identity.api_key_create(
            organization=organization,
            livemode=options["live"],
            scopes=options["scope"],
            name=options["name"],
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None,
        )
        self.stdout.write(f"{issued.api_key.id}  {issued.secret}")
        self.stderr.write("Store the key now: it is not shown again.")

    def _list(self, options: dict[str, Any]) -> None:
        for key in APIKey.objects.filter(
            organization=self._organization(options["organization"])
        ).order_by("created_at"):
            state = "revoked" if key.revoked_at else f"expires {key.expires_at or 'never'}"
            self.stdout.write(
                f"{key.id}  {key.redacted}  {' '.join(key.scopes)}  {state}  "
                f"last used {key.last_used_at or 'never'}"
            )

    def _rotate(self, options: dict[str, Any]) -> None:
        issued = identity.api_key_rotate(
            api_key=self._key(options["key_id"]),
            grace=dt.timedelta(hours=options["grace_hours"]),
        )
        self.stdout.write(f"{issued.api_key.id}  {issued.secret}")

    def _revoke(self, options: dict[str, Any]) -> None:
        key = identity.api_key_revoke(api_key=self._key(options["key_id"]))
        self.stdout.write(f"{key.id} revoked")

    def _organization(self, organization_id: str) -> Organization:
        organization = Organization.objects.filter(id=organization_id).first()
        if organization is None:
            raise CommandError(f"no organization {organization_id}")
        return organization

    def _key(self, key_id: str) -> APIKey:
        key = APIKey.objects.filter(id=key_id).first()
        if key is None:
            raise CommandError(f"no API key {key_id}")
        return key
