import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.verify import CHECKS


class Command(BaseCommand):
    help = (
        "Recompute every balance from the entries, check that money is conserved per "
        "currency and mode and that no entry was altered. Exits 1 at the first discrepancy."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        for name, check in CHECKS:
            found = check()
            if found:
                raise CommandError(f"ledger_verify: {found.check}: {found.detail}")
            self.stdout.write(f"ok  {name}")
        self.stdout.write(f"ledger_verify: the books are right ({time.monotonic() - started:.2f}s)")
