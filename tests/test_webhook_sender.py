"""webhook_send and url_check: deliveries reach receivers and can never be turned inward.

Every socket here is on loopback, and no packet ever leaves the machine. That a refused
destination is refused *before* connecting is proved twice over: a canary listener that
must hear nothing, and a connect recorder that fails the test if the sender even tries.
Made-up names (`rebind.test`, `hooks.test`) are answered by a fake resolver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from payments import webhook_sender
from payments.webhook_sender import SendResult, url_check, webhook_send

PUBLIC_IP = "93.184.215.14"  # a global address; the tests never let a packet go there
BODY = b'{"id": "evt_1", "type": "transfer.created"}'

Reply = tuple[int, list[tuple[str, str]], bytes]
Script = Callable[[socket.socket, threading.Event], None]
SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, SockAddr]


def send(
    url: str,
    *,
    allow_loopback: bool = False,
    connect_timeout: float = 1.0,
    total_timeout: float = 2.0,
    headers: dict[str, str] | None = None,
) -> SendResult:
    return webhook_send(
        url=url,
        body=BODY,
        headers=headers if headers is not None else {"webhook-id": "msg_1"},
        allow_loopback=allow_loopback,
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
    )


# --- receivers, canaries and fakes ---------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on a free loopback port that answers with `reply`."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.received: list[Received] = []
        self.reply: Reply = (200, [], b"ok")

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.server_port}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        """The sender hangs up mid-body on purpose; that is not worth a traceback."""


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, Receiver)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        server.received.append(Received(self.path, headers, body))
        status, reply_headers, reply_body = server.reply
        self.send_response(status)
        for name, value in reply_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply_body)))
        self.end_headers()
        self.wfile.write(reply_body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(server: Receiver) -> Iterator[Receiver]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver()) as server:
        yield server


class Canary:
    """Listens on loopback (IPv4 and, where there is one, IPv6) and never accepts:
    a connection that reached it waits in the backlog, where `connections` sees it."""

    def __init__(self) -> None:
        first = socket.create_server(("127.0.0.1", 0))
        self.port: int = first.getsockname()[1]
        self.sockets = [first]
        with contextlib.suppress(OSError):  # no IPv6 here: [::1] is refused either way
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))

    def connections(self) -> int:
        readable, _, _ = select.select(self.sockets, [], [], 0.05)
        return len(readable)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


class FakeDNS:
    """Answers made-up names. Successive answers model an attacker's TTL-0 records:
    each lookup takes the next one, and the last one repeats."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups: list[str] = []
        self._answers: dict[str, list[tuple[str, ...]]] = {}
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def answer(self, name: str, *answers: tuple[str, ...]) -> None:
        self._answers[name] = list(answers)

    def getaddrinfo(
        self,
        host: str | bytes | None,
        port: str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        if not isinstance(host, str) or host not in self._answers:
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(host)
        queue = self._answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_addrinfo(address, int(port or 0)) for address in addresses]


def _addrinfo(address: str, port: int) -> AddrInfo:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    return FakeDNS(monkeypatch)


def record_connects(
    monkeypatch: pytest.MonkeyPatch, *, let_through: Callable[[str], bool]
) -> list[object]:
    """Every address any socket connects to; those not let through fail with ECONNREFUSED
    without a packet being sent."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        if isinstance(address, tuple) and let_through(address[0]):
            return real_connect(self, address)
        raise ConnectionRefusedError(111, "connection forbidden by the test")

    def create_connection(address: object, *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise ConnectionRefusedError(111, "connection forbidden by the test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


@pytest.fixture
def connect_attempts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    return record_connects(monkeypatch, let_through=lambda address: False)


class OneShotServer:
    """Accepts one connection on loopback and plays `script` on it until stopped."""

    def __init__(self, script: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script: Script) -> None:
        self.listener.settimeout(5)
        with contextlib.suppress(OSError):
            conn, _ = self.listener.accept()
            with conn:
                script(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=2)


@pytest.fixture
def one_shot() -> Iterator[Callable[[Script], OneShotServer]]:
    servers: list[OneShotServer] = []

    def start(script: Script) -> OneShotServer:
        servers.append(OneShotServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# --- delivery ------------------------------------------------------------------------


def test_a_loopback_receiver_gets_the_post_with_its_body_and_headers(receiver: Receiver) -> None:
    result = send(
        receiver.url("/hook/ü?account=acc_1"),
        allow_loopback=True,
        headers={"webhook-id": "msg_1", "Content-Type": "text/plain", "Content-Length": "1"},
    )

    assert (result.status, result.body, result.error) == (200, b"ok", "")
    assert result.latency_ms > 0
    [request] = receiver.received
    assert request.path == "/hook/%C3%BC?account=acc_1"
    assert request.body == BODY
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(BODY))
    assert request.headers["user-agent"] == "OpenPay-Webhooks/1"


@pytest.mark.parametrize("status", [200, 204, 404, 410, 500])
def test_the_receivers_status_and_body_come_back_as_they_are(
    receiver: Receiver, status: int
) -> None:
    body = b"" if status == 204 else f"answer {status}".encode()
    receiver.reply = (status, [], body)

    result = send(receiver.url(), allow_loopback=True)

    assert (result.status, result.body, result.error, result.retry_after) == (
        status,
        body,
        "",
        None,
    )


def test_only_the_first_4_kib_of_a_large_body_comes_back(receiver: Receiver) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    receiver.reply = (200, [], big)

    result = send(receiver.url(), allow_loopback=True)

    assert (result.status, result.error) == (200, "")
    assert result.body == big[:4096]


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "120", 120),
        (503, "0", 0),
        (429, "soon", None),
        (429, "9" * 5000, 9999999999),
        (500, "120", None),  # only 429 and 503 carry a meaningful Retry-After
        (200, "5", None),
    ],
)
def test_retry_after_is_read_in_seconds_on_429_and_503(
    receiver: Receiver, status: int, header: str, expected: int | None
) -> None:
    receiver.reply = (status, [("Retry-After", header)], b"")

    assert send(receiver.url(), allow_loopback=True).retry_after == expected


def test_retry_after_as_an_http_date_becomes_seconds_from_now(receiver: Receiver) -> None:
    in_a_minute = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    receiver.reply = (503, [("Retry-After", email.utils.format_datetime(in_a_minute, True))], b"")

    retry_after = send(receiver.url(), allow_loopback=True).retry_after

    assert retry_after is not None
    assert 55 <= retry_after <= 61


def test_a_redirect_to_loopback_is_returned_not_followed(
    receiver: Receiver, canary: Canary, dns: FakeDNS
) -> None:
    dns.answer("hooks.example.test", ("127.0.0.1",))
    receiver.reply = (302, [("Location", f"http://127.0.0.1:{canary.port}/")], b"")

    result = send(receiver.url(host="hooks.example.test"), allow_loopback=True)

    assert (result.status, result.error) == (302, "")
    assert len(receiver.received) == 1
    assert canary.connections() == 0


def test_failures_are_results_not_exceptions(dns: FakeDNS) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    dns.answer("nowhere.test", ())

    refused = send(f"http://127.0.0.1:{port}/", allow_loopback=True)
    unknown = send("https://nowhere.test/hook")
    malformed = send("http://[::1/hook")

    assert (refused.status, refused.error) == (None, "connection refused")
    assert (unknown.status, unknown.error) == (None, "name not resolved")
    assert malformed.status is None
    assert malformed.error.startswith("invalid URL")


# --- refused destinations ------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "0x7f.1",
        "2130706433",
        "017700000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ],
)
def test_loopback_in_any_spelling_is_refused_and_the_canary_hears_nothing(
    canary: Canary, host: str
) -> None:
    result = send(f"http://{host}:{canary.port}/hook")

    assert result.status is None
    assert result.error.startswith("refused: ")
    assert "loopback" in result.error
    assert canary.connections() == 0


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - a destination under test, not a bind address
        "[fe80::1]",
        "[fd00::1]",
        "224.0.0.1",
        "metadata.google.internal",
    ],
)
def test_inward_addresses_are_refused_without_a_connection_attempt(
    connect_attempts: list[object], host: str, allow_loopback: bool
) -> None:
    result = send(f"http://{host}/latest/meta-data/", allow_loopback=allow_loopback)

    assert result.status is None
    assert result.error.startswith("refused: ")
    assert connect_attempts == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("::1", "refused: ::1 is a loopback address"),
        ("::ffff:127.0.0.1", "refused: ::ffff:7f00:1 embeds 127.0.0.1, a loopback address"),
        ("169.254.169.254", "refused: 169.254.169.254 is a link-local address"),
        ("10.0.0.1", "refused: 10.0.0.1 is a private address"),
        ("100.64.0.1", "refused: 100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "refused: 0.0.0.0 is an unspecified address"),  # noqa: S104
        ("fe80::1", "refused: fe80::1 is a link-local address"),
        ("fd00::1", "refused: fd00::1 is a private address"),
        ("2002:a00:1::1", "refused: 2002:a00:1::1 embeds 10.0.0.1, a private address"),
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254, a link-local address"),
        ("::10.0.0.1", "embeds 10.0.0.1, a private address"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "embeds 10.0.0.1, a private address"),
        ("240.0.0.1", "refused: 240.0.0.1 is a private address"),
    ],
)
def test_a_name_that_resolves_inward_is_refused_at_connect_time(
    dns: FakeDNS, connect_attempts: list[object], address: str, reason: str
) -> None:
    dns.answer("inward.test", (address,))
    assert url_check("https://inward.test/hook") is None  # nothing to see without DNS

    result = send("https://inward.test/hook")

    assert result.status is None
    assert reason in result.error
    assert dns.lookups == ["inward.test"]
    assert connect_attempts == []


def test_allow_loopback_unlocks_loopback_and_nothing_else(
    dns: FakeDNS, connect_attempts: list[object]
) -> None:
    dns.answer("inward.test", ("192.168.1.1",))
    dns.answer("metadata.test", ("169.254.169.254",))

    assert "private" in send("http://inward.test/", allow_loopback=True).error
    assert "link-local" in send("http://metadata.test/", allow_loopback=True).error
    assert connect_attempts == []


def test_a_name_with_public_and_private_addresses_is_refused_outright(
    dns: FakeDNS, connect_attempts: list[object]
) -> None:
    dns.answer("split.test", (PUBLIC_IP, "10.0.0.1"))

    result = send("https://split.test/hook")

    assert result.error == "refused: 10.0.0.1 is a private address"
    assert connect_attempts == []


def test_dns_rebinding_cannot_swap_the_address_after_the_check(
    dns: FakeDNS, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attacker answers a public address first and loopback to any later lookup.
    dns.answer("rebind.test", (PUBLIC_IP,), ("127.0.0.1",))
    connected = record_connects(monkeypatch, let_through=lambda address: address == "127.0.0.1")
    url = f"http://rebind.test:{canary.port}/hook"

    first = send(url)

    assert dns.lookups == ["rebind.test"]  # one lookup: the address checked is the one used
    assert connected == [(PUBLIC_IP, canary.port)]
    assert first.error == "connection refused"  # by the test, standing in for the internet

    second = send(url)

    assert second.error == "refused: 127.0.0.1 is a loopback address"
    assert connected == [(PUBLIC_IP, canary.port)]
    assert canary.connections() == 0


# --- time and size limits ------------------------------------------------------------


def test_a_receiver_that_never_answers_times_out(canary: Canary) -> None:
    started = time.monotonic()

    result = send(f"http://127.0.0.1:{canary.port}/", allow_loopback=True, total_timeout=0.5)

    assert (result.status, result.error) == (None, "timeout")
    assert 0.4 < time.monotonic() - started < 1.5


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(2)
    conn.recv(65536)


def _dribble(conn: socket.socket, stop: threading.Event, byte: bytes) -> None:
    """A byte every 10 ms, for 5 s at most so that a broken sender fails rather than hangs."""
    give_up = time.monotonic() + 5
    while not stop.wait(0.01) and time.monotonic() < give_up:
        conn.sendall(byte)


def dribble_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    _dribble(conn, stop, b"a")


def dribble_body(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    _dribble(conn, stop, b"x")


def test_a_receiver_dribbling_its_headers_is_cut_off_at_the_total_timeout(
    one_shot: Callable[[Script], OneShotServer],
) -> None:
    server = one_shot(dribble_headers)
    started = time.monotonic()

    result = send(f"http://127.0.0.1:{server.port}/", allow_loopback=True, total_timeout=0.5)

    # Each byte arrives well within any per-read timeout: only the total deadline stops it.
    assert (result.status, result.error) == (None, "timeout")
    assert 0.4 < time.monotonic() - started < 1.5


def test_a_receiver_dribbling_an_endless_body_is_cut_off_keeping_the_status(
    one_shot: Callable[[Script], OneShotServer],
) -> None:
    server = one_shot(dribble_body)
    started = time.monotonic()

    result = send(f"http://127.0.0.1:{server.port}/", allow_loopback=True, total_timeout=0.5)

    assert (result.status, result.error) == (200, "")
    assert 0 < len(result.body) < 4096
    assert set(result.body) == {ord("x")}
    assert 0.4 < time.monotonic() - started < 1.5


def too_many_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: x\r\n" * 200 + b"\r\n")


def test_a_response_with_too_many_headers_is_too_large(
    one_shot: Callable[[Script], OneShotServer],
) -> None:
    server = one_shot(too_many_headers)

    result = send(f"http://127.0.0.1:{server.port}/", allow_loopback=True)

    assert (result.status, result.error) == (None, "too large")


# --- TLS -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    chain: Path
    key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A test CA and a certificate it signed for hooks.test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        x509.CertificateBuilder(
            issuer_name=name("OpenPay test CA"), subject_name=name("OpenPay test CA")
        )
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(issuer_name=ca.subject, subject_name=name("hooks.test"))
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    paths = Certs(directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class TLSReceiver:
    server: Receiver
    server_names: list[str | None]


@pytest.fixture
def tls_receiver(certs: Certs) -> Iterator[TLSReceiver]:
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.chain, certs.key)
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    with serving(Receiver(tls=context)) as server:
        yield TLSReceiver(server, server_names)


def trust_test_ca(monkeypatch: pytest.MonkeyPatch, certs: Certs) -> None:
    """The sender trusts the system store only; for these tests, trust the test CA."""
    context = ssl.create_default_context(cafile=certs.ca)
    monkeypatch.setattr(webhook_sender, "_tls_context", lambda: context)


def test_https_sends_the_url_host_as_sni_and_refuses_an_untrusted_certificate(
    tls_receiver: TLSReceiver, dns: FakeDNS
) -> None:
    dns.answer("hooks.test", ("127.0.0.1",))

    result = send(tls_receiver.server.url(host="hooks.test", scheme="https"), allow_loopback=True)

    assert result.status is None
    assert result.error.startswith("tls: ")
    assert "certificate" in result.error or "issuer" in result.error
    assert tls_receiver.server_names == ["hooks.test"]
    assert tls_receiver.server.received == []


def test_https_to_a_trusted_receiver_verifies_the_url_host_at_the_checked_address(
    tls_receiver: TLSReceiver, dns: FakeDNS, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust_test_ca(monkeypatch, certs)
    dns.answer("hooks.test", ("127.0.0.1",))
    dns.answer("other.test", ("127.0.0.1",))

    good = send(tls_receiver.server.url(host="hooks.test", scheme="https"), allow_loopback=True)
    wrong_name = send(
        tls_receiver.server.url(host="other.test", scheme="https"), allow_loopback=True
    )

    assert (good.status, good.body, good.error) == (200, b"ok", "")
    [request] = tls_receiver.server.received
    assert request.headers["host"] == f"hooks.test:{tls_receiver.server.server_port}"
    assert wrong_name.status is None
    assert wrong_name.error.startswith("tls: ")
    assert "other.test" in wrong_name.error


# --- url_check -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("http:///hook", "URL has no host"),
        ("http://", "URL has no host"),
        ("https://user:pass@example.com/hook", "credentials in the URL are not allowed"),
        ("https://example.com@127.0.0.1/hook", "credentials in the URL are not allowed"),
        ("https://example.com:99999/hook", "invalid URL"),
        ("https://exa mple.com/hook", "URL contains whitespace or control characters"),
        ("https://example.com/hook\r\nX-Injected: 1", "whitespace or control characters"),
        ("http://127.0.0.1:9/hook", "refused: 127.0.0.1 is a loopback address"),
        ("http://0x7f.1/", "refused: 127.0.0.1 is a loopback address"),
        ("http://2130706433/", "refused: 127.0.0.1 is a loopback address"),
        ("http://017700000001/", "refused: 127.0.0.1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "embeds 127.0.0.1, a loopback address"),
        ("http://localhost:8000/hook", "refused: localhost is a loopback name"),
        ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a link-local"),
        ("http://metadata.google.internal/", "cloud metadata host"),
        ("http://10.0.0.1/", "refused: 10.0.0.1 is a private address"),
        ("http://[fd12::1]/", "refused: fd12::1 is a private address"),
    ],
)
def test_url_check_refuses_with_a_reason(url: str, reason: str) -> None:
    refusal = url_check(url)

    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "HTTPS://Example.COM:8443/hook?account=acc_1",
        "http://hooks.example.com/",
        f"https://{PUBLIC_IP}/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://bücher.example/hook",
    ],
)
def test_url_check_accepts_public_http_and_https(url: str) -> None:
    assert url_check(url) is None


def test_url_check_accepts_loopback_only_when_allowed() -> None:
    assert url_check("http://127.0.0.1:9/hook") is not None
    assert url_check("http://127.0.0.1:9/hook", allow_loopback=True) is None
    assert url_check("http://localhost:8000/hook", allow_loopback=True) is None
    assert url_check("http://[::1]:8000/hook", allow_loopback=True) is None
    assert url_check("http://10.0.0.1/hook", allow_loopback=True) is not None
    assert url_check("http://169.254.169.254/", allow_loopback=True) is not None
