"""API8, through a real server (gunicorn, as production runs it), where HTTP framing is
the server's and not the test client's: a body sent `Transfer-Encoding: chunked` is
`411` (Django would read it as empty — a partial capture sent chunked would settle the
whole transfer), and one over the size limit is `413`, before anything is written."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from ledger.models import Transfer
from tests.api.support import make_party
from tests.attacks.support import (
    Objects,
    Operation,
    body_for,
    catalogue,
    changes,
    objects_create,
    path_for,
    snapshot,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
WITH_BODY = [o for o in catalogue() if o.takes_body]


def send(
    base: str, method: str, path: str, key: str, body: bytes, *, chunked: bool
) -> tuple[int, dict[str, Any]]:
    """One request over a fresh connection, framed as asked. The body is written by a
    thread while this one reads the answer: a server may answer (and hang up) before it
    has read a large body, and the answer must not be lost in the reset that follows."""
    where = urlsplit(base)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"{framing}\r\nConnection: close\r\n\r\n"
    ).encode()
    if chunked:
        pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    address = (where.hostname, int(where.port or 80))
    with socket.create_connection(address, timeout=60) as connection:

        def write() -> None:
            with contextlib.suppress(OSError):  # the server hung up first: that is its right
                connection.sendall(head + body)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        response = http.client.HTTPResponse(connection)
        response.begin()
        answer = response.read()
        writer.join(timeout=60)
    return response.status, json.loads(answer or b"{}")


@pytest.fixture
def owner() -> tuple[str, Objects]:
    party = make_party("alice")
    return party.secret, objects_create(party)


@pytest.mark.parametrize("operation", WITH_BODY, ids=str)
def test_a_chunked_body(server: str, owner: tuple[str, Objects], operation: Operation) -> None:
    key, objects = owner
    body = json.dumps(body_for(operation, objects).value).encode()
    before = snapshot()
    status, problem = send(
        server, operation.method, path_for(operation, objects), key, body, chunked=True
    )
    assert (status, problem["code"]) == (411, "length_required")
    assert snapshot() == before, changes(before, snapshot())


def test_a_partial_capture_sent_chunked_captures_nothing(
    server: str, owner: tuple[str, Objects]
) -> None:
    key, objects = owner
    path = f"/v1/transfers/{objects.pending}/settle"
    status, _ = send(server, "POST", path, key, b'{"amount": 1}', chunked=True)
    assert status == 411
    assert Transfer.objects.get(id=objects.pending).status == "pending"
    status, settled = send(server, "POST", path, key, b'{"amount": 1}', chunked=False)
    assert (status, settled["settled_amount"]) == (200, 1)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_size_limit(server: str, owner: tuple[str, Objects], chunked: bool) -> None:
    key, _ = owner
    body = b'{"currency": "USD"' + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b"}"
    before = snapshot()
    status, problem = send(server, "POST", "/v1/accounts", key, body, chunked=chunked)
    assert (status, problem["code"]) == (
        (411, "length_required") if chunked else (413, "request_too_large")
    )
    assert snapshot() == before, changes(before, snapshot())


MALFORMED = {
    "request-line-too-long": (b"GET /v1/accounts?" + b"a" * 5000 + b" HTTP/1.1\r\n", 414),
    "header-without-colon": (b"GET /v1/accounts HTTP/1.1\r\nNo colon here\r\n", 400),
    "header-too-long": (b"GET /v1/accounts HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n", 431),
    "not-http": (b"HELLO\r\n", 400),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_what_gunicorn_refuses_itself_is_problem_json_too(server: str, name: str) -> None:
    """Refused before Django sees it (gunicorn's own limits and parser): still
    problem+json with a stable code and a Request-Id, never an HTML page."""
    raw, expected = MALFORMED[name]
    where = urlsplit(server)
    with socket.create_connection((where.hostname, int(where.port or 80)), timeout=30) as sock:
        sock.sendall(raw + b"Host: x\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
    assert response.status == expected
    assert response.getheader("Content-Type") == "application/problem+json"
    assert response.getheader("Request-Id", "").startswith("req_")
    assert body["status"] == expected and body["request_id"] == response.getheader("Request-Id")
    assert body["type"].endswith(f"/docs/errors#{body['code']}")
