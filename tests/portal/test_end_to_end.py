"""A developer who has never seen the platform, in a real Chromium against a real gunicorn
and Celery worker: sign up, open the verification link, see the sandbox, create a key, call
the API with it, add a webhook endpoint, send a test event and see it delivered, rotate
the key (the old one still works during the grace), revoke it (refused at once).

Screenshots of every step are saved under var/e2e/ (E2E_ARTIFACTS overrides), and
`make screenshots` refreshes the ones in docs/img/portal/ from this run.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
from standardwebhooks import Webhook

from tests.conftest import CHROMIUM
from tests.live import ROOT, celery_worker, gunicorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", ROOT / "var" / "e2e"))
PASSWORD = "correct-horse-battery-42"
PHONE: ViewportSize = {"width": 390, "height": 844}
PAGES = [
    "/",
    "/keys/",
    "/keys/new/",
    "/apps/",
    "/apps/new/",
    "/webhooks/",
    "/webhooks/new/",
    "/requests/",
    "/sandbox/",
    "/team/",
    "/account/security/",
    "/authorized-apps/",
    "/docs/",
    "/docs/portal",
]
# Elements reaching past the screen's right edge, unless a frame around them scrolls or
# clips (a wide table in its .table-wrap, a code block): only that frame moves.
TOO_WIDE = """
(() => {
  const framed = el => {
    for (let up = el.parentElement; up; up = up.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  return [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !framed(el))
    .map(el => el.outerHTML.slice(0, 100));
})()
"""
# Visible inputs, selects and text areas that a screen reader could not name.
UNNAMED_CONTROLS = """
[...document.querySelectorAll('input, select, textarea')]
  .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))
"""


class Receiver:
    """A webhook receiver on 127.0.0.1, as a developer would run on their laptop."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                state.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def stack(mailbox: Path) -> Iterator[str]:
    """gunicorn and a Celery worker with its beat, sharing the test database and broker;
    e-mail goes to files the test reads like an inbox."""
    env = {
        "WEBHOOKS_ALLOW_LOOPBACK": "true",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mailbox),
    }
    schedule = str(mailbox.parent / "celerybeat-schedule")
    with celery_worker("--beat", "--schedule", schedule, **env), gunicorn(**env) as base:
        yield base


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the test itself never
    # touches the ORM while it runs, the servers do.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def shooter(page: Page) -> Callable[[str], None]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

    return shot


def eventually(check: Callable[[], bool], timeout: float = 45, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def verification_link(mailbox: Path) -> str:
    eventually(lambda: mailbox.exists() and any(mailbox.iterdir()), what="the e-mail")
    message = message_from_bytes(next(mailbox.iterdir()).read_bytes(), policy=policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/verify/\S+", body.get_content())
    assert match, "the e-mail carries the verification link"
    return match.group(0)


def api(base: str, key: str, path: str) -> requests.Response:
    return requests.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_from_sign_up_to_a_verified_webhook(
    stack: str, browser: Browser, mailbox: Path, receiver: Receiver
) -> None:
    started = time.monotonic()
    context = browser.new_context(base_url=stack, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    shot = shooter(page)

    # Sign up.
    page.goto("/signup/")
    page.get_by_label("E-mail").fill("dana@example.test")
    page.get_by_label("Organization").fill("Dana Labs")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("I accept the terms of service").check()
    shot("01-sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check your inbox")
    shot("02-check-your-inbox")

    # The link in the e-mail opens a funded sandbox and a first test key.
    page.goto(verification_link(mailbox))
    page.get_by_role("button", name="Confirm and open my sandbox").click()
    expect(page.get_by_text("sk_test_").first).to_be_visible()
    shot("03-welcome")
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.get_by_text("USD").first).to_be_visible()
    expect(page.get_by_text("EUR").first).to_be_visible()
    shot("04-dashboard")

    # A new key, shown once, works against the API from outside the browser.
    page.goto("/keys/")
    page.get_by_role("link", name="Create key").click()
    page.get_by_label("Name").fill("Laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("[data-secret]").first.inner_text().strip()
    assert key.startswith("sk_test_")
    shot("05-key-created")
    accounts = api(stack, key, "/v1/accounts")
    assert accounts.status_code == 200, accounts.text
    assert {a["currency"] for a in accounts.json()["data"]} == {"USD", "EUR"}
    first_call = time.monotonic() - started

    # A webhook endpoint on the developer's own machine gets a signed test event.
    page.goto("/webhooks/")
    page.get_by_role("link", name="Add an endpoint").click()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_role("button", name="Add endpoint").click()
    shot("06-endpoint-created")
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    shot("06-endpoint-created")
    endpoint_page = page.url
    page.get_by_role("button", name="Send test event").click()
    # The form's POST redirects back here with a message; wait for that page to land so
    # that nothing below navigates while the browser is still in the middle of it.
    expect(page.get_by_text(re.compile(r"Test event \S+ sent"))).to_be_visible()
    eventually(lambda: bool(receiver.received), what="the test event")
    headers, body = receiver.received[0]
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "webhook_endpoint.test"
    first_webhook = time.monotonic() - started

    def delivered() -> bool:
        page.goto(endpoint_page)
        return page.get_by_text("200").count() > 0

    eventually(delivered, what="the delivery on the endpoint's page")
    shot("07-delivery")

    # Rotate: the old key keeps working during the grace period, then revoke it.
    page.goto("/keys/")
    row = page.get_by_role("row").filter(has_text="Laptop").first
    row.get_by_role("link", name="Rotate").click()
    page.get_by_label("Keep the old key working for").select_option(label="1 hour")
    page.get_by_role("button", name="Rotate").click()
    new_key = page.locator("[data-secret]").first.inner_text().strip()
    assert new_key.startswith("sk_test_") and new_key != key
    shot("08-key-rotated")
    assert api(stack, key, "/v1/accounts").status_code == 200
    assert api(stack, new_key, "/v1/accounts").status_code == 200

    page.goto("/keys/")
    row = page.get_by_role("row").filter(has_text=key[-4:]).first
    row.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("It is refused from now on.")).to_be_visible()
    shot("09-key-revoked")
    refused = api(stack, key, "/v1/accounts")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_api_key"
    assert api(stack, new_key, "/v1/accounts").status_code == 200

    # The switcher turns the portal into Chinese, amounts in the language's own format.
    page.goto("/")
    page.get_by_label("Language").select_option("zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_text("US$10,000.00").first).to_be_visible()
    shot("11-dashboard-chinese")
    page.get_by_label("语言").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # The same pages at phone width.
    # Every page, at phone width: nothing scrolls sideways but a wide table inside its
    # own frame, and every form control has an accessible name.
    phone = browser.new_context(
        base_url=stack, viewport=PHONE, storage_state=context.storage_state()
    )
    small = phone.new_page()
    for path in PAGES:
        small.goto(path)
        width = small.evaluate("document.documentElement.scrollWidth")
        wide = small.evaluate(TOO_WIDE)
        assert width <= PHONE["width"] and wide == [], f"{path} is {width}px wide: {wide}"
        unnamed = small.evaluate(UNNAMED_CONTROLS)
        assert unnamed == [], f"{path} has form controls without a label: {unnamed}"
    small.goto("/")
    small.screenshot(path=ARTIFACTS / "10-dashboard-phone.png", full_page=True)
    phone.close()
    context.close()

    (ARTIFACTS / "timings.json").write_text(
        json.dumps(
            {"first_api_call_s": round(first_call, 1), "first_webhook_s": round(first_webhook, 1)}
        )
    )
