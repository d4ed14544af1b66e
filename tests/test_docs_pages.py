"""The guides are served as pages, and every error code the API can answer with has
the entry its problem `type` links to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from payments.errors import LEDGER_STATUS

ROOT = Path(__file__).resolve().parent.parent
CODE_PATTERNS = [
    re.compile(r'ApiError\(\s*\d{3},\s*"(\w+)"'),
    re.compile(r'AuthenticationFailed\(\s*"(\w+)"'),
    re.compile(r'(?:APIKeyError|TokenRefused)\(\s*"(\w+)"'),
    re.compile(r'code="(\w+)"'),
]


def codes_in_source() -> set[str]:
    found = set(LEDGER_STATUS)
    for package in ("payments", "oauth"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for pattern in CODE_PATTERNS:
                found |= set(pattern.findall(text))
    return found - {"invalid_value"}


def test_every_error_code_has_its_entry_in_the_error_docs(client: Client) -> None:
    page = client.get("/docs/errors").content.decode()
    anchors = set(re.findall(r'id="([\w-]+)"', page))
    missing = sorted(codes_in_source() - anchors)
    assert missing == []
    assert {"insufficient_funds", "idempotency_key_reused", "rate_limited"} <= anchors


def test_the_index_lists_every_guide(client: Client) -> None:
    page = client.get("/docs/").content.decode()
    for guide in (ROOT / "docs").glob("*.md"):
        assert f'href="/docs/{guide.stem}"' in page


def test_links_between_guides_point_at_pages(client: Client) -> None:
    page = client.get("/docs/api").content.decode()
    assert 'href="/docs/errors"' in page
    assert '.md"' not in page


@pytest.mark.parametrize("slug", ["nope", "..%2Fsettings", "index.md"])
def test_an_unknown_guide_is_404(client: Client, slug: str) -> None:
    assert client.get(f"/docs/{slug}").status_code == 404


def test_a_problem_type_links_to_its_entry(client: Client) -> None:
    body = client.get("/v1/accounts").json()
    assert body["type"].endswith("/docs/errors#authentication_required")


@pytest.mark.django_db
def test_the_portal_guide_shows_its_screenshots() -> None:
    page = Client().get("/docs/portal").content.decode()
    pictures = re.findall(r'src="(/docs/img/[^"]+)"', page)
    assert len(pictures) >= 8
    for picture in pictures:
        served = Client().get(picture)
        assert served.status_code == 200, picture
        assert served["Content-Type"] == "image/png"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["../../README.md", "portal/../../pyproject.toml", "portal/missing.png", "x.svg"]
)
def test_only_pictures_inside_docs_img_are_served(name: str) -> None:
    assert Client().get(f"/docs/img/{name}").status_code == 404
