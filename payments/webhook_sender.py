"""Outbound HTTP for webhook deliveries that cannot be turned inward (SSRF).

An endpoint URL is chosen by whoever holds an API key, so every delivery is a request
our servers make to an address an outsider picked. Left alone, that reaches the cloud
metadata service (credentials), the database, Redis and admin ports on the private
network. The defence has three layers:

1. `url_check` refuses what is wrong on its face (scheme, credentials, literal inward
   IPs in any spelling, loopback and metadata names), so the API can say why at once.
2. At connect time the host is resolved once, every address is checked, and the socket
   connects to one of exactly those addresses. A check on the name followed by a
   second lookup in the HTTP library is the DNS-rebinding hole; here there is one lookup.
3. Every send is bounded: a connect timeout, a hard total deadline that also covers a
   receiver dribbling bytes, a cap on what is read, no redirects, no proxies.

The HTTP client is the standard library's `http.client`: it follows no redirects and
reads no proxy settings from the environment, and `connect()` is a public method we can
replace without touching private hooks.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.client
import ipaddress
import math
import re
import socket
import ssl
import string
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import quote, urlsplit

USER_AGENT = "OpenPay-Webhooks/1"
BODY_KEPT = 4 * 1024
BODY_READ_LIMIT = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")
# The shapes a resolver reads as an IPv4 address (inet_aton): 127.1, 0x7f.1, 2130706433,
# 017700000001. Matched so that url_check refuses them as the address they are.
_IPV4_SPELLING = re.compile(r"[0-9a-fx.]+")
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Resolve to link-local anyway; named here so the API refuses them with a clear reason.
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# Framing is ours: a caller's Content-Length or Transfer-Encoding that disagrees with the
# body would desynchronise a proxy in front of the receiver (request smuggling).
_OWN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type", "user-agent"}
)
_ERROR_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (TimeoutError, "timeout"),
    (socket.gaierror, "name not resolved"),
    (ConnectionRefusedError, "connection refused"),
    (http.client.RemoteDisconnected, "closed without a response"),
    (ConnectionError, "connection reset"),
    (ssl.SSLError, "tls error"),
    (http.client.LineTooLong, "too large"),
    (http.client.HTTPException, "bad response"),
    (OSError, "connection error"),
    (ValueError, "invalid request"),
)


@dataclass(frozen=True)
class SendResult:
    status: int | None  # HTTP status, None when no response
    body: bytes  # first 4 KiB of the response body
    latency_ms: float
    error: str  # "" whenever a response arrived; else a short reason
    retry_after: int | None  # seconds from Retry-After on 429/503, else None


class _Refused(Exception):
    """The destination is not one we send to; the message is the reason shown to users."""


def webhook_send(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allow_loopback: bool = False,
    connect_timeout: float = 3.0,
    total_timeout: float = 10.0,
) -> SendResult:
    """POST `body` to `url`. Never raises: every failure is a SendResult with an error.

    A 3xx comes back as it is (status, error ""): following it would let a public
    endpoint send us on to an inward address, so the caller treats it as a failure.
    """
    started = time.monotonic()
    try:
        target = _Target.parse(url)
        _refuse_statically(target, allow_loopback=allow_loopback)
        status, kept, retry_after = _deliver(
            target,
            body=body,
            headers=headers,
            policy=_Policy(allow_loopback, connect_timeout, _Watchdog(total_timeout)),
        )
    except Exception as exc:  # the worker must get a result, whatever the receiver did
        return SendResult(None, b"", _elapsed_ms(started), _describe(exc), None)
    return SendResult(status, kept, _elapsed_ms(started), "", retry_after)


def url_check(url: str, *, allow_loopback: bool = False) -> str | None:
    """None if `url` may be a webhook endpoint, else the reason it may not.

    Static only (no DNS): a name that resolves inward passes here and is refused by
    webhook_send at connect time, which is the check that counts.
    """
    try:
        _refuse_statically(_Target.parse(url), allow_loopback=allow_loopback)
    except _Refused as refused:
        return str(refused)
    return None


# --- the URL -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # lower case, IDNA-encoded, IPv6 without brackets
    port: int
    path: str  # path and query, as sent in the request line

    @classmethod
    def parse(cls, url: str) -> _Target:
        if _UNSAFE_URL_CHARS.search(url):
            raise _Refused("URL contains whitespace or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _Refused(f"invalid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise _Refused("scheme must be http or https")
        # https://bank.example@evil.test/ reads as bank.example to a person; and the
        # credentials would end up in our logs.
        if "@" in parts.netloc:
            raise _Refused("credentials in the URL are not allowed")
        if not parts.hostname:
            raise _Refused("URL has no host")
        if port == 0:
            raise _Refused("invalid URL: port 0")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Percent-encode what is not ASCII (the request line must be); leave the rest.
        path = quote(path, safe=string.punctuation)
        return cls(scheme, _ascii_host(parts.hostname), port or _DEFAULT_PORTS[scheme], path)


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _Refused("invalid host name") from None


def _refuse_statically(target: _Target, *, allow_loopback: bool) -> None:
    host = target.host.removesuffix(".")
    literal = _literal_ip(host)
    if literal is not None:
        _refuse_address(literal, allow_loopback=allow_loopback)
    elif host == "localhost" or host.endswith(".localhost"):
        if not allow_loopback:
            raise _Refused(f"refused: {host} is a loopback name")
    elif host in _METADATA_HOSTS:
        raise _Refused(f"refused: {host} is a cloud metadata host")


def _literal_ip(host: str) -> IPAddress | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    if _IPV4_SPELLING.fullmatch(host):
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    return None


# --- the address ---------------------------------------------------------------------


def _refuse_address(ip: IPAddress, *, allow_loopback: bool) -> None:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            kind = _inward_kind(inner, allow_loopback=allow_loopback)
            if kind:
                raise _Refused(f"refused: {ip} embeds {inner}, {kind} address")
            return
    kind = _inward_kind(ip, allow_loopback=allow_loopback)
    if kind:
        raise _Refused(f"refused: {ip} is {kind} address")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that traffic to `ip` actually reaches, if any.

    ::ffff:127.0.0.1 (mapped) reaches 127.0.0.1 through a dual-stack socket, and
    ::127.0.0.1 (compatible), 6to4, Teredo and NAT64 addresses are tunnelled or
    translated to the IPv4 address inside them. Python calls several of these global.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _inward_kind(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """What makes `ip` an address we do not send to, or None if it is public."""
    if ip.is_loopback:
        return None if allow_loopback else "a loopback"
    if ip.is_unspecified:  # connecting to 0.0.0.0 or :: reaches this very host
        return "an unspecified"
    if ip.is_link_local:  # 169.254.169.254 is the cloud metadata service
        return "a link-local"
    if ip.is_multicast:
        return "a multicast"
    if ip in _SHARED_ADDRESS_SPACE:  # carrier-grade NAT: the provider's inside network
        return "a shared (carrier-grade NAT)"
    if ip.is_private:
        return "a private"
    if ip.is_reserved:
        return "a reserved"
    if not ip.is_global:
        return "a non-public"
    return None


# --- the connection ------------------------------------------------------------------


class _Watchdog:
    """Cuts the connection when the total time is up.

    Socket timeouts bound each wait, not their sum: a receiver sending one byte a second
    (in the TLS handshake, the headers or the body) would hold a worker for ever. At the
    deadline a timer shuts the socket down, which wakes the blocked read. It shuts a
    duplicate descriptor that it owns, so it can never hit a descriptor number that was
    closed meanwhile and reused by another thread.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._close()
            self._sock = sock.dup()
            if self.fired:
                self._cut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._cut()

    def _cut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._timer.cancel()
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True)
class _Policy:
    allow_loopback: bool
    connect_timeout: float
    watchdog: _Watchdog


def _connect_checked(host: str, port: int, policy: _Policy) -> socket.socket:
    """Resolve once, check every address, connect to one of exactly those addresses."""
    candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    # All or nothing: a name that also points inward is refused outright rather than
    # trusting the order in which we would try its addresses.
    for family, _, _, _, sockaddr in candidates:
        _refuse_sockaddr(family, sockaddr[0], allow_loopback=policy.allow_loopback)
    last_error = OSError("the name has no address")
    for family, kind, proto, _, sockaddr in candidates:
        try:
            return _connect_one(socket.socket(family, kind, proto), sockaddr, policy)
        except OSError as exc:  # unreachable over IPv6, say: try the next address
            last_error = exc
    raise last_error


def _connect_one(sock: socket.socket, sockaddr: _SockAddr, policy: _Policy) -> socket.socket:
    try:
        timeout = min(policy.connect_timeout, policy.watchdog.remaining())
        if timeout <= 0:
            raise TimeoutError("no time left to connect")
        sock.settimeout(timeout)
        sock.connect(sockaddr)
        policy.watchdog.watch(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(max(policy.watchdog.remaining(), 0.001))
    except BaseException:
        sock.close()
        raise
    return sock


def _refuse_sockaddr(family: int, address: str | int, *, allow_loopback: bool) -> None:
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, str):
        raise _Refused(f"refused: unsupported address {address!r}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise _Refused(f"refused: unreadable address {address!r}") from None
    _refuse_address(ip, allow_loopback=allow_loopback)


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, policy: _Policy) -> None:
        super().__init__(host, port)
        self.policy = policy

    def connect(self) -> None:
        self.sock = _connect_checked(self.host, self.port, self.policy)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, policy: _Policy) -> None:
        super().__init__(host, port, context=_tls_context())
        self.policy = policy

    def connect(self) -> None:
        sock = _connect_checked(self.host, self.port, self.policy)
        try:
            # Certificate and SNI are for the name in the URL, not the address we chose.
            self.sock = _tls_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built here rather than taken from http.client's default so that verification
    # cannot be switched off process-wide (PYTHONHTTPSVERIFY=0, a patched default).
    return ssl.create_default_context()


# --- the exchange --------------------------------------------------------------------


def _deliver(
    target: _Target, *, body: bytes, headers: Mapping[str, str], policy: _Policy
) -> tuple[int, bytes, int | None]:
    connection_class = (
        _CheckedHTTPSConnection if target.scheme == "https" else _CheckedHTTPConnection
    )
    conn = connection_class(target.host, target.port, policy=policy)
    try:
        with policy.watchdog:
            try:
                return _exchange(conn, target, body=body, headers=headers, watchdog=policy.watchdog)
            except Exception as exc:
                if policy.watchdog.fired:
                    raise TimeoutError("total timeout") from exc
                raise
    finally:
        conn.close()


def _exchange(
    conn: http.client.HTTPConnection,
    target: _Target,
    *,
    body: bytes,
    headers: Mapping[str, str],
    watchdog: _Watchdog,
) -> tuple[int, bytes, int | None]:
    conn.request("POST", target.path, body=body, headers=_request_headers(headers))
    response = conn.getresponse()
    try:
        # http.client takes the end of the stream for the end of the headers, so headers
        # cut off by the deadline would otherwise pass for a complete response.
        if watchdog.fired:
            raise TimeoutError("total timeout while reading the headers")
        return response.status, _read_capped(response), _retry_after(response)
    finally:
        response.close()


def _request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    merged = {name: value for name, value in headers.items() if name.lower() not in _OWN_HEADERS}
    merged["Content-Type"] = "application/json"
    merged["User-Agent"] = USER_AGENT
    merged["Connection"] = "close"
    return merged


def _read_capped(response: http.client.HTTPResponse) -> bytes:
    """The first BODY_KEPT bytes; reading stops at BODY_READ_LIMIT, EOF or the deadline.

    Reading on past what is kept lets a receiver finish writing a modest page before we
    hang up; the limit stops a huge one. read1 returns after a single receive, so bytes
    that arrived before a cut-off are kept, and a body cut short does not undo the
    status the receiver already sent.
    """
    kept = bytearray()
    seen = 0
    while seen < BODY_READ_LIMIT:
        try:
            chunk = response.read1(BODY_KEPT)
        except (OSError, http.client.HTTPException):
            break
        if not chunk:
            break
        seen += len(chunk)
        kept += chunk[: max(BODY_KEPT - len(kept), 0)]
    return bytes(kept)


def _retry_after(response: http.client.HTTPResponse) -> int | None:
    value = (response.getheader("Retry-After") or "").strip()
    if response.status not in (429, 503) or not value:
        return None
    if value.isascii() and value.isdigit():
        return int(value[:10])  # int() of thousands of digits raises; no one waits 300 years
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" parses as naive; HTTP dates are in GMT
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: {exc.verify_message}"
    if isinstance(exc, http.client.HTTPException) and "got more than" in str(exc):
        return "too large"  # more headers than http.client accepts
    for kind, reason in _ERROR_REASONS:
        if isinstance(exc, kind):
            return reason
    return f"unexpected error: {type(exc).__name__}"


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
