"""API8, security misconfiguration: bodies that are not exactly JSON are refused (the
content types a web page may send cross-site without a preflight, invalid UTF-8, NUL
characters in any string the schema takes, a key given twice), no answer may be cached
or read cross-origin, and the production settings pass Django's deployment check."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest

from tests.api.support import problem
from tests.attacks.support import (
    Api,
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    path_for,
    pointer,
    snapshot,
    string_fields,
    with_value,
)
from tests.live import ROOT

pytestmark = pytest.mark.django_db
OPERATIONS = catalogue()
WITH_BODY = [o for o in OPERATIONS if o.takes_body]
# What a form or fetch() on any web page may send to us without a CORS preflight, and
# no content type at all.
SIMPLE_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""]


def refused(api: Api, operation: Operation, objects: Objects, **kw: Any) -> Any:
    before = snapshot()
    response = api.request(operation.method, path_for(operation, objects), **kw)
    assert snapshot() == before, changes(before, snapshot())
    return response


@pytest.mark.parametrize("content_type", SIMPLE_TYPES, ids=lambda t: t or "none")
@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_body_that_is_not_declared_json(
    api: Api, alices: Objects, operation: Operation, content_type: str
) -> None:
    raw = json.dumps(body_for(operation, alices).value)
    response = refused(api, operation, alices, raw=raw, content_type=content_type)
    assert problem(response) == (415, "unsupported_media_type", None)


@pytest.mark.parametrize(
    "raw",
    [b'{"description": "\xc3\x28"}', b'{"description": "\xed\xa0\x80"}'],
    ids=["truncated-sequence", "encoded-surrogate"],
)
@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_body_that_is_not_utf8(
    api: Api, alices: Objects, operation: Operation, raw: bytes
) -> None:
    response = refused(api, operation, alices, raw=raw)
    assert problem(response) == (400, "validation_error", None)
    assert "UTF-8" in response.json()["detail"]


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_raw_nul_byte_in_the_body(api: Api, alices: Objects, operation: Operation) -> None:
    raw = json.dumps(body_for(operation, alices).value)[:-1].encode() + b', "x": "\x00"}'
    assert problem(refused(api, operation, alices, raw=raw)) == (400, "validation_error", None)


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_key_given_twice(api: Api, alices: Objects, operation: Operation) -> None:
    """Which of the two a parser keeps is its own choice: a proxy, a log or a signature
    check that reads the first would not see what the API acted on."""
    body = body_for(operation, alices).value or {"description": "a"}
    name, value = next(iter(body.items()))
    raw = json.dumps(body)[:-1] + f", {json.dumps(name)}: {json.dumps(value)}}}"
    response = refused(api, operation, alices, raw=raw)
    assert problem(response) == (400, "validation_error", None)
    assert f"duplicate key {name!r}" in response.json()["detail"]


STRINGS = [(o, path) for o in WITH_BODY for path in string_fields(o.request)]


@pytest.mark.parametrize(
    ("operation", "path"), STRINGS, ids=[f"{o} {pointer(p)}" for o, p in STRINGS]
)
def test_a_nul_character_in_a_string(
    api: Api, alices: Objects, operation: Operation, path: tuple[str | int, ...]
) -> None:
    body = body_for(operation, alices).value
    if path[-1] == "*":  # a map of strings: the NUL goes in a key and in a value
        value: Any = {"note": "be\u0000fore", "k\u0000y": "v"}
        path = path[:-1]
    else:
        value = "be\u0000fore"
    response = refused(api, operation, alices, body=with_value(body, path, value))
    status, _, param = problem(response)
    assert status == 400, response.content[:300]
    named = {param} | {e["param"] for e in response.json().get("errors", [])}
    assert any(p and p.startswith(pointer(path)) for p in named), named


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_no_answer_may_be_cached_or_read_by_another_origin(
    api: Api, alices: Objects, operation: Operation
) -> None:
    """Answers carry balances and, on creation and rotation, signing secrets."""
    for credential in (api.credential, None):
        response = api.using(credential).request(
            operation.method,
            path_for(operation, alices),
            body_for(operation, alices).value,
            headers={"Origin": "https://evil.example"},
        )
        assert response.headers.get("Cache-Control") == "no-store", response.status_code
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        assert not any(name.startswith("Access-Control-") for name in response.headers)


def test_the_production_settings_pass_the_deployment_check() -> None:
    """What `make check-deploy` runs in CI, run here too so the suite stands alone."""
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "API_KEY_SECRET": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "pay.example.com",
        "DATABASE_URL": "postgres://localhost/openpay",
        "REDIS_URL": "redis://localhost:6379/0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
