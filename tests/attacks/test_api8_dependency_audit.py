"""`make audit` (tools/audit.py) tells the three outcomes apart, run for real: pip-audit
against a stand-in OSV service on loopback that knows one vulnerability, one that knows
none, and one that is not there. (On this machine neither PyPI's JSON API nor OSV is
reachable, so `make audit` itself reports exit 3: see docs/reliability.md#known-gaps.)"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.live import ROOT

LOCK = (
    "django==5.2.0\n"
    "requests==2.32.0 ; python_version >= '3.8'\n"
    "win-only==1.0 ; sys_platform == 'win32'\n"
)
VULN = {
    "id": "GHSA-xxxx-yyyy-zzzz",
    "aliases": ["CVE-2099-0001"],
    "summary": "A made-up hole, for the test",
    "affected": [
        {
            "package": {"name": "django", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.2.1"}]}],
        }
    ],
}


class FakeOsv(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, vulnerable: set[str], status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _OsvHandler)
        self.vulnerable = vulnerable
        self.status = status
        self.asked: list[str] = []


class _OsvHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, FakeOsv)
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = query["package"]["name"]
        server.asked.append(name)
        body = json.dumps({"vulns": [VULN]} if name in server.vulnerable else {}).encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def osv(vulnerable: set[str], status: int = 200) -> Iterator[FakeOsv]:
    server = FakeOsv(vulnerable, status)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def audit(lock: Path, url: str) -> Any:
    return subprocess.run(
        [sys.executable, "tools/audit.py", "-r", str(lock), "--service", "osv", "--osv-url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(LOCK)
    return path


def test_a_clean_lock_exits_0(lock: Path) -> None:
    with osv(vulnerable=set()) as service:
        done = audit(lock, f"http://127.0.0.1:{service.server_port}/v1/query")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audited 2 packages: no known vulnerabilities" in done.stdout
    assert sorted(service.asked) == ["django", "requests"], "markers are honoured"


def test_a_vulnerability_exits_1_naming_it_and_its_fix(lock: Path) -> None:
    with osv(vulnerable={"django"}) as service:
        done = audit(lock, f"http://127.0.0.1:{service.server_port}/v1/query")
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("django 5.2.0: ")]
    assert "CVE-2099-0001" in line and "GHSA-xxxx-yyyy-zzzz" in line
    assert line.endswith("fixed in 5.2.1")
    assert "1 known vulnerabilities in 1 of 2 packages" in done.stdout


@pytest.mark.parametrize("how", ["nobody-listening", "service-error"])
def test_an_unreachable_service_exits_3_saying_so(lock: Path, how: str) -> None:
    if how == "nobody-listening":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/query"
        done = audit(lock, url)
    else:
        with osv(vulnerable=set(), status=503) as service:
            done = audit(lock, f"http://127.0.0.1:{service.server_port}/v1/query")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "vulnerability service unreachable: 2 packages not audited" in done.stdout
