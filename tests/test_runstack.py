"""`make run` as a newcomer uses it: the real web server, Celery worker and beat,
started together by `manage.py runstack`, and all stopped by one Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tools.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def wait_for(url: str, deadline: float) -> requests.Response:
    while True:
        try:
            return requests.get(url, timeout=10)
        # A server still starting may accept the connection and answer late.
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    # A scratch SQLite database and broker folder; REDIS_URL is kept, so on CI the
    # worker uses the real Redis broker.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PUBLIC_BASE_URL"}}
    env["VAR_DIR"] = str(tmp_path)
    return env


@pytest.fixture
def stack(stack_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    log = Path(stack_env["VAR_DIR"]) / "stack.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--port", str(port), "--web-workers", "1"],
            cwd=ROOT,
            env=stack_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield process, port, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_runstack_serves_the_platform_and_stops_on_ctrl_c(
    stack: tuple[subprocess.Popen[str], int, Path], stack_env: dict[str, str]
) -> None:
    process, port, log = stack
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90

    assert wait_for(f"{base}/healthz", deadline).json() == {"status": "ok"}
    ready = requests.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    while "ready." not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.3)
    output = log.read_text()
    assert "celery@" in output and "ready." in output, "the Celery worker started"
    assert "beat: Starting" in output, "Celery beat started"
    assert "merchant-staff" in output and f"{base}/admin/" in output, "credentials and URLs"

    admin = requests.get(f"{base}/admin/login/", timeout=30)
    assert admin.status_code == 200 and "Django administration" in admin.text
    docs = requests.get(f"{base}/api/docs/", timeout=30)
    assert docs.status_code == 200
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in docs.text, "the API docs load nothing from a CDN"
    assert "swagger-ui" in docs.text
    script = next(
        line.split('src="', 1)[1].split('"', 1)[0]
        for line in docs.text.splitlines()
        if 'src="/static/' in line
    )
    assert requests.get(f"{base}{script}", timeout=30).status_code == 200
    assert requests.get(f"{base}/api/redoc/", timeout=30).status_code == 200
    assert requests.get(f"{base}/api/schema/", timeout=30).status_code == 200

    # The same port again: refused with one clear line, non-zero exit.
    again = subprocess.run(
        [sys.executable, "manage.py", "runstack", "--port", str(port)],
        cwd=ROOT,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in again.stderr

    # One Ctrl-C (SIGINT to the foreground group) stops all three.
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    time.sleep(0.5)
    survivors = subprocess.run(
        ["pgrep", "-g", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert survivors == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=2)
