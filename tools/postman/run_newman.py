"""Run the Postman collection with newman against a live gunicorn on a scratch database.

python -m tools.postman.run_newman docs/openpay.postman_collection.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import requests

from tools.live_server import ROOT, gunicorn

NEWMAN = ROOT / "tools" / "postman" / "node_modules" / ".bin" / "newman"


def main(collection: str) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(VAR_DIR=scratch, API_RATE_LIMIT="10000", API_IP_RATE_LIMIT="10000")
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        seeded = subprocess.run(
            [*manage, "seed_demo", "--json"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        merchant = json.loads(seeded.stdout)["organizations"][0]
        with gunicorn(env) as base:
            key = merchant["test_secret_key"]
            usd = next(a["id"] for a in merchant["accounts"] if a["currency"] == "USD")
            second = requests.post(
                f"{base}/v1/accounts",
                json={"currency": "USD", "name": "newman"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            ).json()["id"]
            variables = {
                "baseUrl": base,
                "bearerToken": key,
                "accountId": usd,
                "destinationAccountId": second,
            }
            command = [str(NEWMAN), "run", collection, "--bail", "failure"]
            for name, value in variables.items():
                command += ["--env-var", f"{name}={value}"]
            return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
