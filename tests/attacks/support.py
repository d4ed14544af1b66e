"""What the attacks share: the operations of the OpenAPI schema the server serves, a
request for each that its owner may make, the objects those requests name, and a
snapshot of everything a refused request must leave alone.

Operations, their scopes, path parameters, request bodies and read-only fields all come
from the served schema, so a new operation is attacked without new code. Two things the
schema cannot say are taught here: which object a path parameter or body field names
(PATH_OBJECTS, BODY_OBJECTS; test_api9_inventory.py fails when a new one appears), and
which state an action needs its object in (STATE; test_baseline.py fails when a new
action needs another).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import itertools
import json
import re
import secrets
import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.apps import apps
from django.db import models
from django.http import HttpResponse
from django.test import Client
from django.test.client import ClientHandler
from django.utils import timezone

from ledger import services as ledger
from ledger.models import Account, Entry, Settlement, Transfer
from oauth import services as identity
from oauth.models import APIKey, Consent, Organization, User
from payments import services as payments
from payments import webhooks
from payments.models import (
    Event,
    IdempotencyRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.api import support as api_support
from tests.api.support import REQUEST_ID, OpenApi, Party, make_user

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse
else:
    TestResponse = HttpResponse

PUBLIC_URL = "https://hooks.example.com/openpay"
METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def served_schema() -> dict[str, Any]:
    """The schema exactly as a client downloads it (it needs no database)."""
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    document: dict[str, Any] = json.loads(response.content)
    return document


def catalogue() -> list[Operation]:
    """Every /v1 operation of the served schema: what the attacks are parametrized over."""
    return operations(served_schema())


@functools.cache
def _handler(enforce_csrf_checks: bool) -> ClientHandler:
    """One request handler of each kind for the whole run, shared by every test client:
    building one loads every middleware, and WhiteNoise's indexes every static file,
    a tenth of a second each time — over a thousand attacks, most of the run."""
    handler = ClientHandler(enforce_csrf_checks)
    handler.load_middleware()
    return handler


def client(*, enforce_csrf_checks: bool = False, **defaults: Any) -> Client:
    """A Django test client (its own cookies) on the shared handler."""
    made = Client(enforce_csrf_checks=enforce_csrf_checks, **defaults)
    made.handler = _handler(enforce_csrf_checks)
    return made


class Api(api_support.Api):
    """tests.api's client, which checks every answer against the schema, on the shared
    handler."""

    def __init__(self, openapi: OpenApi, credential: str | None = None) -> None:
        super().__init__(openapi, credential)
        self.client = client()

    def using(self, credential: str | None) -> Api:
        return Api(self.openapi, credential)


class SchemaChecker(OpenApi):
    """tests.api's checker, which also knows a 204: no body, but still a Request-Id and
    a status the operation documents."""

    def check(self, method: str, path: str, response: HttpResponse | TestResponse) -> None:
        if response.status_code != 204:
            super().check(method, path, response)
            return
        assert REQUEST_ID.fullmatch(response.headers.get("Request-Id", ""))
        assert response.content == b""
        found = self.operation(method, path)
        assert found is not None and "204" in found[1]["responses"], f"{method} {path}: 204"


# The operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str  # /v1/transfers/{transfer_id}/settle
    operation_id: str
    scope: str | None  # the one scope its security requirement names
    path_parameters: tuple[str, ...]
    parameters: tuple[dict[str, Any], ...]  # every parameter, path and query
    request: dict[str, Any] | None  # the body's schema, $refs resolved; None: none declared
    response: dict[str, Any]  # the success body's schema (a list's item), $refs resolved
    response_name: str  # the success body's component, "TransferOut" ("" when none)
    success: int

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def takes_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    @property
    def names_an_object(self) -> bool:
        return bool(self.path_parameters)


def _resolve(document: dict[str, Any], schema: Any, hops: int = 0) -> Any:
    """The schema with every $ref replaced by what it points at (ours has no cycles)."""
    assert hops < 20, "a $ref cycle"
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            merged = {**_resolve(document, target, hops + 1)}
            merged.update({k: v for k, v in schema.items() if k != "$ref"})
            return merged
        if "allOf" in schema and len(schema["allOf"]) == 1:
            inner = _resolve(document, schema["allOf"][0], hops)
            return {**inner, **{k: v for k, v in schema.items() if k != "allOf"}}
        return {k: _resolve(document, v, hops) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(document, item, hops) for item in schema]
    return schema


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "").rsplit("/", 1)[-1])


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for template, item in document["paths"].items():
        if not template.startswith("/v1/"):
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is not None:
                found.append(_operation(document, method, template, operation))
    return sorted(found, key=lambda o: (o.template, o.method))


def _operation(
    document: dict[str, Any], method: str, template: str, operation: dict[str, Any]
) -> Operation:
    requirements = operation.get("security", [])
    assert requirements, f"{method} {template} declares no security requirement"
    scopes = {
        scope for requirement in requirements for names in requirement.values() for scope in names
    }
    assert len(scopes) <= 1, f"{method} {template} names several scopes: {scopes}"
    success = min(int(status) for status in operation["responses"] if int(status) < 300)
    content = operation["responses"][str(success)].get("content") or {}
    raw: dict[str, Any] = content.get("application/json", {}).get("schema") or {}
    if raw.get("$ref"):
        component = document["components"]["schemas"][_ref_name(raw)]
        data = component.get("properties", {}).get("data", {})
        if data.get("type") == "array" and "$ref" in data.get("items", {}):
            raw = data["items"]  # a list: what a client could try to set is its item's
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return Operation(
        method=method.upper(),
        template=template,
        operation_id=operation["operationId"],
        scope=next(iter(scopes), None),
        path_parameters=tuple(
            p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
        ),
        parameters=tuple(_resolve(document, operation.get("parameters", []))),
        request=_resolve(document, body["schema"]) if body else None,
        response=_resolve(document, raw),
        response_name=_ref_name(raw),
        success=success,
    )


# The objects the requests name ----------------------------------------------------------


@dataclass(frozen=True)
class Objects:
    """One tenant's objects in one mode: enough for every operation to succeed."""

    account: str  # funded
    payee: str  # same currency as `account`
    pending: str  # a pending manual transfer account → payee
    settled: str  # a settled transfer account → payee
    event: str  # the transfer.created event of `pending`
    endpoint: str  # a webhook endpoint subscribed to every event

    def every_id(self) -> set[str]:
        return {self.account, self.payee, self.pending, self.settled, self.event, self.endpoint}


# Ids of nothing at all: what "not found" looks like, and a stand-in where only the
# shape of a request matters.
NOWHERE_OBJECTS = Objects(
    account="acct_00000000000000000000000000",
    payee="acct_00000000000000000000000001",
    pending="tr_00000000000000000000000000",
    settled="tr_00000000000000000000000001",
    event="evt_00000000000000000000000000",
    endpoint="we_00000000000000000000000000",
)
# Which object each path parameter names.
PATH_OBJECTS = {
    "account_id": "account",
    "transfer_id": "pending",
    "event_id": "event",
    "endpoint_id": "endpoint",
}
# Which object each body field that refers to one names.
BODY_OBJECTS = {
    "source_account": "account",
    "destination_account": "payee",
    "webhook_endpoint": "endpoint",
}
# The actions that need their object in another state than PATH_OBJECTS gives.
STATE = {("transfers_reverse", "transfer_id"): "settled"}
# Names that read as references to an object: a new body field named so must be taught.
REFERENCE = re.compile(r".*(account|transfer|endpoint|event|_id)$")


def objects_create(
    party: Party, *, livemode: bool = False, accounts: tuple[Account, Account] | None = None
) -> Objects:
    """`party`'s objects in one mode, made through the same services the API calls; the
    transfers go between `accounts` (a funded one and a payee) when given."""
    holder = party.holder
    if accounts is not None:
        source, destination = accounts[0].id, accounts[1].id
    elif livemode:
        account = ledger.account_open(holder=holder, livemode=True, currency="USD", name="Live")
        payee = ledger.account_open(holder=holder, livemode=True, currency="USD", name="Payee")
        funding = ledger.system_account(purpose="attack funding", currency="USD", livemode=True)
        ledger.transfer_post(
            holder=funding.holder,
            livemode=True,
            source_id=funding.id,
            destination_id=account.id,
            amount=1_000_000,
            currency="USD",
        )
        source, destination = account.id, payee.id
    else:
        source, destination = party.usd.id, party.payee.id

    def transfer() -> Transfer:
        return payments.transfer_create(
            organization_id=holder,
            livemode=livemode,
            spec=ledger.TransferSpec(
                source_id=source,
                destination_id=destination,
                amount=1_000,
                currency="USD",
                settlement=Settlement.MANUAL,
            ),
        )

    endpoint = webhooks.webhook_endpoint_create(
        organization_id=holder, livemode=livemode, url=PUBLIC_URL, enabled_events=["*"]
    )
    pending = transfer()
    settled = transfer()
    payments.transfer_settle(organization_id=holder, transfer_id=settled.id, amount=None)
    event = Event.objects.get(
        type="transfer.created", data__object__id=pending.id, organization_id=holder
    )
    return Objects(
        account=source,
        payee=destination,
        pending=pending.id,
        settled=settled.id,
        event=event.id,
        endpoint=endpoint.id,
    )


def path_for(operation: Operation, objects: Objects) -> str:
    return filled(operation.template, objects, operation.operation_id)


def filled(template: str, objects: Objects, operation_id: str = "") -> str:
    """`template` with each path parameter replaced by the id of its object in `objects`."""
    path = template
    for name in re.findall(r"\{([^}]+)\}", template):
        kind = STATE.get((operation_id, name), PATH_OBJECTS[name])
        path = path.replace("{" + name + "}", getattr(objects, kind))
    return path


# Request bodies, from their schemas -------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """Where a body names an object: `pointer` as the API's `param` spells it."""

    pointer: str
    path: tuple[str | int, ...]
    kind: str


@dataclass
class Body:
    value: dict[str, Any]
    references: list[Reference] = field(default_factory=list)


def body_for(operation: Operation, objects: Objects) -> Body:
    """The smallest body the schema allows (every required field, and the optional ones
    that name an object), naming `objects`."""
    body = Body({})
    if operation.request is not None:
        body.value = _example(operation.request, "", (), objects, body)
    return body


def example(schema: dict[str, Any], name: str, objects: Objects) -> Any:
    """A valid value for a field `name` of `schema`."""
    return _example(schema, name, (), objects, Body({}))


def _example(
    schema: dict[str, Any], name: str, path: tuple[str | int, ...], objects: Objects, body: Body
) -> Any:
    if name in BODY_OBJECTS:
        body.references.append(Reference(pointer(path), path, BODY_OBJECTS[name]))
        return getattr(objects, BODY_OBJECTS[name])
    if name == "currency":
        return "USD"
    if name == "url":
        return PUBLIC_URL
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        # Optional fields that name an object are filled too: they are what the tenancy
        # attacks swap for another tenant's ids.
        return {
            key: _example(inner, key, (*path, key), objects, body)
            for key, inner in schema.get("properties", {}).items()
            if key in schema.get("required", []) or key in BODY_OBJECTS
        }
    if kind == "array":
        return [
            _example(schema["items"], name, (*path, index), objects, body)
            for index in range(max(schema.get("minItems", 1), 1))
        ]
    if kind == "integer":
        return max(int(schema.get("minimum", 0)), 100)
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (timezone.now() - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    if kind == "string":
        return "x" * max(int(schema.get("minLength", 0)), 6)
    raise AssertionError(f"no example for {name!r}: {schema}")


def pointer(path: tuple[str | int, ...]) -> str:
    """transfers[0].source_account, as the API names a field in `param`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def with_value(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A deep copy of `value` with the item at `path` set to `new` (and the objects and
    lists on the way there made, where an optional field was left out)."""
    copy = json.loads(json.dumps(value))
    target = copy
    for part, after in itertools.pairwise(path):
        if isinstance(target, list) and part == len(target):
            target.append([] if isinstance(after, int) else {})
        elif isinstance(target, dict) and part not in target:
            target[part] = [] if isinstance(after, int) else {}
        target = target[part]
    if isinstance(target, list) and path[-1] == len(target):
        target.append(new)
    else:
        target[path[-1]] = new
    return copy


def string_fields(
    schema: dict[str, Any] | None, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Every string-valued place in a body of `schema`, including object keys' values."""
    if schema is None:
        return
    kind = schema.get("type")
    if kind == "object":
        for key, inner in schema.get("properties", {}).items():
            yield from string_fields(inner, (*path, key))
        if isinstance(schema.get("additionalProperties"), dict) and path:
            yield (*path, "*")  # a map of strings: metadata
    elif kind == "array":
        yield from string_fields(schema["items"], (*path, 0))
    elif kind == "string" or "enum" in schema:
        yield path


# Read-only fields: what a client may see but never set ----------------------------------


def model_named(component: str) -> type[models.Model] | None:
    """The model behind a response component: TransferOut is ledger's Transfer."""
    name = component.removesuffix("Out")
    for model in apps.get_models():
        if model.__name__ == name and model._meta.app_label in ("ledger", "payments", "oauth"):
            return model
    return None


def read_only_fields(operation: Operation, *, request: dict[str, Any]) -> dict[str, Any]:
    """Every field of the response (and of the model behind it) that the request schema
    `request` does not take, each with a value of the type the response gives it."""
    taken = set(request.get("properties", {}))
    found: dict[str, Any] = {}
    for name, schema in operation.response.get("properties", {}).items():
        if name not in taken:
            found[name] = _tempting(schema)
    model = model_named(operation.response_name)
    if model is not None:
        for model_field in model._meta.concrete_fields:
            name = model_field.name
            if name not in taken and name not in found:
                found[name] = _tempting_for_field(model_field)
    return found


def _tempting(schema: dict[str, Any]) -> Any:
    """A value an attacker would like to set."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    return {
        "integer": 10**12,
        "boolean": True,
        "object": {"posted": 10**12},
        "array": ["*"],
    }.get(str(kind), "attacker-chosen")


def _tempting_for_field(model_field: models.Field[Any, Any]) -> Any:
    if isinstance(model_field, models.BooleanField):
        return True
    if isinstance(model_field, models.IntegerField | models.BigIntegerField):
        return 10**12
    if isinstance(model_field, models.JSONField):
        return {"posted": 10**12}
    if isinstance(model_field, models.DateTimeField):
        return "2000-01-01T00:00:00Z"
    return "attacker-chosen"


# What a refused request must leave alone --------------------------------------------------

WATCHED: list[type[models.Model]] = [
    Account,
    Transfer,
    Entry,
    Event,
    WebhookEndpoint,
    WebhookDelivery,
    WebhookAttempt,
    IdempotencyRecord,
    Consent,
]


def snapshot() -> dict[str, list[str]]:
    """Every row of every watched table, as text: equal snapshots mean nothing was
    written. (API keys are left out: using one stamps its last_used_at.)"""
    rows: dict[str, list[str]] = {}
    for model in WATCHED:
        names = [f.attname for f in model._meta.concrete_fields]
        rows[model._meta.label] = sorted(
            json.dumps(row, default=str, sort_keys=True)
            for row in model._default_manager.values_list(*names)
        )
    return rows


def changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    """What differs, table by table, for an assertion message."""
    return {
        label: {
            "gone": sorted(set(before[label]) - set(after[label]))[:3],
            "new": sorted(set(after[label]) - set(before[label]))[:3],
        }
        for label in before
        if before[label] != after[label]
    }


def key_expire(secret_key: APIKey) -> None:
    APIKey.objects.filter(id=secret_key.id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )


# OAuth: a token a user granted a third-party application ---------------------------------

REDIRECT_URI = "http://127.0.0.1:8765/callback"
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)"(?: id="[^"]*")? value="([^"]*)"')


def oauth_token(
    *,
    user: User,
    organization: Organization,
    account_ids: list[str],
    scopes: list[str],
    vendor: str = "vendor",
) -> str:
    """An access token from the real flow: the consent screen (where `user` shares
    `account_ids` of `organization` with an application of a new organization named
    `vendor`), the code, and its exchange with PKCE."""
    maker = identity.organization_create(name=vendor.title(), owner=make_user(vendor))
    issued = identity.application_create(
        organization=maker, name="Budget Buddy", redirect_uris=[REDIRECT_URI]
    )
    client_id = issued.application.client_id
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    browser = client()
    browser.force_login(user)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(scopes),
        "state": "attack",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = browser.get("/oauth/authorize/?" + urlencode(query))
    assert page.status_code == 200, page.content[:500]
    form = dict(HIDDEN_INPUT.findall(page.content.decode()))
    answer = browser.post(
        "/oauth/authorize/",
        {**form, "organization": organization.id, "accounts": account_ids, "allow": "on"},
    )
    assert answer.status_code == 302, answer.content[:500]
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{client_id}:{issued.client_secret}".encode()).decode()
    token = client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert token.status_code == 200, token.content[:500]
    return str(token.json()["access_token"])


# Sockets: a receiver, a canary, a resolver and a recorder of connections ------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on a free loopback port: records each POST exactly as it
    arrived and answers with `reply` (status, headers)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[Received] = []
        self.reply: tuple[int, list[tuple[str, str]]] = (200, [])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, Receiver)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.received.append(Received(self.path, dict(self.headers.items()), body))
        status, headers = server.reply
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads `received`."""


@contextlib.contextmanager
def serving() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Canary:
    """Listens on 127.0.0.1 and never accepts: a connection that reached it waits in the
    backlog, where `heard` sees it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]

    def heard(self) -> bool:
        readable, _, _ = select.select([self.socket], [], [], 0.05)
        return bool(readable)

    def close(self) -> None:
        self.socket.close()


AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


@contextlib.contextmanager
def attacker_dns(answers: dict[str, list[tuple[str, ...]]]) -> Iterator[list[str]]:
    """Names the attacker controls resolve to `answers`, several addresses an answer;
    each lookup takes the next answer (a TTL-0 rebinding) and the last one repeats.
    Yields the names looked up."""
    real = socket.getaddrinfo
    queues = {name: list(each) for name, each in answers.items()}
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[AddrInfo]:
        if host not in queues:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        queue = queues[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [_addrinfo(address, int(port or 0)) for address in addresses]

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield lookups
    finally:
        socket.getaddrinfo = real


def _addrinfo(address: str, port: int) -> AddrInfo:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@contextlib.contextmanager
def connections_recorded(*, allowed: Callable[[Any], bool]) -> Iterator[list[Any]]:
    """Every address a Python socket tries to connect to while inside; those not
    `allowed` fail at once with ECONNREFUSED, without a packet being sent."""
    attempts: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        if not allowed(address):
            raise ConnectionRefusedError(111, "no connection is allowed there by the test")
        real(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    try:
        yield attempts
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]
