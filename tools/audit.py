"""`make audit`: pip-audit on the locked dependencies, with an honest verdict.

pip-audit alone says "No known vulnerabilities found" and exits 0 when it could not ask
anyone (every package "could not be audited"), which a CI log would read as a pass.
This runs it on requirements.lock as it is (pinned, without hashes: --no-deps
--disable-pip), reads its JSON, and ends with one of:

    exit 0  every package was audited and none has a known vulnerability
    exit 1  vulnerabilities found (each printed with its id and the versions that fix it)
    exit 2  the service answered, but some packages could not be audited (or pip-audit
            failed for another reason)
    exit 3  vulnerability service unreachable: N packages not audited

Usage: python tools/audit.py [-r requirements.lock] [--service pypi|osv] [--osv-url URL]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
PYPI_PROBE = "https://pypi.org/pypi/pip/json"
DEFAULT_OSV = "https://api.osv.dev/v1/query"
# What pip-audit's traceback says when it could not reach the service at all.
UNREACHABLE = re.compile(
    r"ConnectionError|NameResolutionError|Max retries exceeded|Could not connect|"
    r"ServiceError|Read timed out|ConnectTimeout|Temporary failure in name resolution"
)

CLEAN, VULNERABLE, INCOMPLETE, UNREACHABLE_EXIT = 0, 1, 2, 3


@dataclass(frozen=True)
class Verdict:
    code: int
    lines: list[str]


def pinned(requirements: Path) -> int:
    """How many packages the lock pins for this interpreter (markers evaluated): the
    count shown when none could be audited."""
    count = 0
    for line in requirements.read_text().splitlines():
        if re.match(r"[\w.-]+==", line):
            requirement = Requirement(line.split(" #")[0])
            count += requirement.marker is None or requirement.marker.evaluate()
    return count


def judge(
    report: dict[str, Any] | None, *, stderr: str, pins: int, reachable: Callable[[], bool]
) -> Verdict:
    """The verdict on pip-audit's JSON report (None when it produced none); `reachable`
    asks the service directly, when there is a doubt."""
    if report is None:
        if UNREACHABLE.search(stderr) or not reachable():
            return Verdict(
                UNREACHABLE_EXIT,
                [f"vulnerability service unreachable: {pins} packages not audited"],
            )
        tail = stderr.strip().splitlines()[-5:]
        return Verdict(INCOMPLETE, ["pip-audit failed:", *tail])
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)
    lines = []
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            lines.append(
                f"{dependency['name']} {dependency['version']}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f", fixed in {fixes}"
            )
    if skipped and (len(skipped) == len(dependencies) or not reachable()):
        lines.append(f"vulnerability service unreachable: {len(skipped)} packages not audited")
        code = VULNERABLE if vulnerable else UNREACHABLE_EXIT
        return Verdict(code, lines)
    if skipped:
        lines.append(f"{len(skipped)} packages could not be audited:")
        lines += [f"  {d['name']}: {d['skip_reason']}" for d in skipped]
    if vulnerable:
        count = sum(len(d["vulns"]) for d in vulnerable)
        lines.append(f"{count} known vulnerabilities in {len(vulnerable)} of {audited} packages")
        return Verdict(VULNERABLE, lines)
    if skipped:
        return Verdict(INCOMPLETE, lines)
    return Verdict(CLEAN, [f"audited {audited} packages: no known vulnerabilities"])


def service_reachable(service: str, osv_url: str, timeout: float) -> bool:
    """Whether the service answers a question whose answer exists (pip is on PyPI)."""
    try:
        if service == "osv":
            query = json.dumps({"package": {"name": "pip", "ecosystem": "PyPI"}}).encode()
            request = urllib.request.Request(  # noqa: S310 -- an https/http URL we were given
                osv_url, data=query, headers={"Content-Type": "application/json"}
            )
        else:
            request = urllib.request.Request(PYPI_PROBE)
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return bool(200 <= response.status < 300)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--requirements", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
    parser.add_argument("--osv-url", default=DEFAULT_OSV)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "report.json"
        command = [
            str(PIP_AUDIT),
            "--requirement",
            str(args.requirements),
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--output",
            str(output),
            "--progress-spinner",
            "off",
            "--vulnerability-service",
            args.service,
            "--timeout",
            str(int(args.timeout)),
            "--cache-dir",
            str(Path(scratch) / "cache"),
        ]
        if args.service == "osv":
            command += ["--osv-url", args.osv_url]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        report = json.loads(output.read_text()) if output.exists() else None
    verdict = judge(
        report,
        stderr=done.stderr,
        pins=pinned(args.requirements),
        reachable=lambda: service_reachable(args.service, args.osv_url, args.timeout),
    )
    for line in verdict.lines:
        print(line)
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
