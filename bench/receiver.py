"""The webhook receiver of the webhook section, in a process of its own so that neither
side of a figure shares its interpreter (and its GIL) with it.

    python -m bench.receiver        # prints `listening on 127.0.0.1:<port>`, then serves

Every POST is answered 200 at once, with an empty body, after reading it; its
`webhook-id` header and the moment it arrived (`time.monotonic()`, which on Linux is one
clock for every process of the machine) are kept. `GET /arrivals` answers them all as
JSON: `[[webhook-id, seconds], …]` in the order they came.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.processes import HOST, child


def main() -> None:
    arrivals: list[tuple[str, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.monotonic()
            with lock:
                arrivals.append((self.headers.get("webhook-id", ""), arrived))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(arrivals).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default listen backlog is 5: with 8 senders connecting at once
        # the kernel drops the extra SYNs, and each dropped one costs its sender a
        # 1-second retransmission, which is the receiver's doing, not the sender's.
        request_queue_size = 1024

    server = Server((HOST, 0), Handler)
    print(f"listening on {HOST}:{server.server_address[1]}", flush=True)
    server.serve_forever()


@dataclass(frozen=True)
class Receiver:
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hooks"

    def arrivals(self) -> list[tuple[str, float]]:
        """(webhook-id, arrival time) of every POST so far, in order."""
        client = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            client.request("GET", "/arrivals")
            answer = client.getresponse()
            return [(str(key), float(at)) for key, at in json.loads(answer.read())]
        finally:
            client.close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    """The receiver process, until the block ends."""
    with child(
        "webhook receiver",
        [sys.executable, "-m", "bench.receiver"],
        ready=lambda started: "listening on" in started.output(),
        ready_within=20,
    ) as running:
        found = re.search(r"listening on [\d.]+:(\d+)", running.output())
        assert found is not None
        yield Receiver(int(found.group(1)))


if __name__ == "__main__":
    main()
