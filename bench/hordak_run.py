"""django-hordak under the same load as our ledger: `Account.transfer_to` between random
pairs of accounts from many threads. Run by the ledger section with .venv-bench's
python and DJANGO_SETTINGS_MODULE=bench.settings_hordak; prints one JSON line.

    python -m bench.hordak_run setup --accounts 1000
    python -m bench.hordak_run run --accounts 1000 --seconds 10 --threads 16
"""

from __future__ import annotations

import argparse
import json
import random

import django

# Models can be imported only once Django is set up.
django.setup()

from hordak.models import Account, AccountType  # type: ignore[import-not-found]  # noqa: E402
from moneyed import Money  # type: ignore[import-not-found]  # noqa: E402

from bench.threads import run_for  # noqa: E402


def setup(accounts: int) -> dict[str, object]:
    for number in range(1, accounts + 1):
        Account.objects.create(name=f"bench {number}", type=AccountType.asset, currencies=["USD"])
    return {"accounts": Account.objects.count()}


def run(accounts: int, seconds: float, threads: int) -> dict[str, object]:
    everyone = list(Account.objects.order_by("id")[:accounts])

    def transfer(rng: random.Random) -> None:
        source, destination = rng.sample(everyone, 2)
        # transfer_to is atomic itself: the transaction and its two legs, one commit.
        source.transfer_to(destination, Money(rng.randint(1, 100), "USD"))

    result = run_for(seconds, threads, transfer)
    return {"tps": result.rate(), "errors": dict(result.errors())}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hordak_run")
    parser.add_argument("command", choices=["setup", "run"])
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if args.command == "setup":
        print(json.dumps(setup(args.accounts)))
    else:
        print(json.dumps(run(args.accounts, args.seconds, args.threads)))


if __name__ == "__main__":
    main()
