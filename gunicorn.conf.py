"""gunicorn's settings, read from the working directory (gunicorn loads
./gunicorn.conf.py unless told otherwise).

gunicorn answers some requests itself, before Django sees them: a request line over
4,094 bytes, too many or too large headers, a malformed request line or header. Its own
answer is an HTML page; here it is problem+json like every other error of the API, with
a stable `code` (docs/errors.md) and a Request-Id.
"""

from __future__ import annotations

import json
import os
import socket

import gunicorn.util  # type: ignore[import-untyped]
from ulid import ULID

CODES = {
    400: "malformed_request",
    403: "forbidden",
    414: "request_line_too_long",
    417: "expectation_failed",
    431: "request_headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}
ERRORS_PAGE = (
    os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/") + "/docs/errors"
)


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error, answering in problem+json. The detail is gunicorn's
    own message, cut short: it may quote what the client sent."""
    code = CODES.get(status_int, "malformed_request" if status_int < 500 else "internal_error")
    request_id = f"req_{str(ULID()).lower()}"  # as common.ids.new_id makes them
    body = json.dumps(
        {
            "type": f"{ERRORS_PAGE}#{code}",
            "title": reason,
            "status": status_int,
            "detail": mesg[:200] or reason,
            "code": code,
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Request-Id: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin1") + body)


gunicorn.util.write_error = write_problem
