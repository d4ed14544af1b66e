import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from developers.demo import seed_demo


class Command(BaseCommand):
    help = "Create (idempotently) the demo world and print how to use it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo creates users with known passwords: not in production")
        world = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(world))
            return
        base = world["base_url"]
        self.stdout.write(
            f"\nOpenPay is running at {base}\n"
            f"  Portal:    {base}/  (log in as a demo user; guides at {base}/docs/)\n"
            f"  Admin:     {base}/admin/\n"
            f"  API docs:  {base}/api/docs/  (Redoc: {base}/api/redoc/)\n"
            f"  Health:    {base}/healthz  {base}/readyz\n\nDemo users:\n"
        )
        for user in world["users"]:
            staff = ", staff" if user["is_staff"] else ""
            self.stdout.write(
                f"  {user['username']:<16} password {user['password']}  "
                f"({user['role']} of {user['organization']}{staff})\n"
            )
        self.stdout.write("\nOrganizations (test-mode keys are shown once):\n")
        for organization in world["organizations"]:
            accounts = ", ".join(f"{a['id']} ({a['currency']})" for a in organization["accounts"])
            self.stdout.write(
                f"  {organization['name']} {organization['id']}\n"
                f"    key:      {organization['test_secret_key']}\n"
                f"    accounts: {accounts}\n"
            )
        first = world["organizations"][0]
        self.stdout.write(
            f"\nTry it:\n  curl {base}/v1/accounts -H 'Authorization: Bearer "
            f"{first['test_secret_key']}'\n"
        )
        client = world["oauth_client"]
        self.stdout.write(
            f"\nOAuth client: {client['client_id']}\n"
            f"  secret (shown once): {client['client_secret']}\n"
            f"  redirect URI: {client['redirect_uri']}\n\n"
        )
