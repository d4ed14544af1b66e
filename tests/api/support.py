"""What the API tests share: the OpenAPI schema as a response checker, a client that
checks every answer, the parties of the access matrix, and a snapshot of the books."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import HttpResponse

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse
else:
    TestResponse = HttpResponse
from django.test import Client
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ledger import services as ledger
from ledger.models import Account, Entry, Transfer
from oauth import services as identity
from oauth.models import APIKey, Organization, Scope, User
from payments import services as payments

SCHEMA_URI = "urn:openpay:openapi"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
REQUEST_ID = re.compile(r"req_[0-9a-z]{26}")
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
READ_SCOPES = [Scope.ACCOUNTS_READ, Scope.TRANSACTIONS_READ, Scope.TRANSFERS_READ]
SANDBOX_BALANCE = 1_000_000  # what payments.sandbox_open credits each new test account


# The OpenAPI schema --------------------------------------------------------------------

_formats = FormatChecker(formats=())


@_formats.checks("date-time")
def _rfc3339_utc(value: object) -> bool:
    return not isinstance(value, str) or bool(RFC3339_UTC.fullmatch(value))


@_formats.checks("uri")
def _absolute_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(re.match(r"https?://[^\s]+$", value))


class OpenApi:
    """The served schema: find an operation by method and concrete path, validate bodies."""

    def __init__(self, document: dict[str, Any]) -> None:
        assert document["openapi"].startswith("3.1"), "3.1 schemas are plain JSON Schema"
        self.document = document
        self.registry: Registry[Any] = Registry().with_resource(
            SCHEMA_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
            for p in document["paths"]
        ]

    def template(self, path: str) -> str | None:
        for pattern, template in self.templates:
            if pattern.match(path):
                return str(template)
        return None

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        template = self.template(path)
        if template is None:
            return None
        operation = self.document["paths"][template].get(method.lower())
        return (template, operation) if operation else None

    def validate(self, pointer: list[str], instance: Any) -> None:
        fragment = "/".join(
            quote(p.replace("~", "~0").replace("/", "~1"), safe="") for p in pointer
        )
        validator = Draft202012Validator(
            {"$ref": f"{SCHEMA_URI}#/{fragment}"}, registry=self.registry, format_checker=_formats
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            raise AssertionError(
                f"the body does not match {'/'.join(pointer)}:\n"
                + "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors)
                + f"\nbody: {json.dumps(instance)[:2000]}"
            )

    def check(self, method: str, path: str, response: HttpResponse | TestResponse) -> None:
        """Every response of /v1/: a Request-Id, a documented status, a matching body."""
        status = response.status_code
        request_id = response.headers.get("Request-Id", "")
        assert REQUEST_ID.fullmatch(request_id), f"Request-Id header is {request_id!r}"
        content_type = response.headers.get("Content-Type", "")
        expected_type = PROBLEM_JSON if status >= 400 else JSON
        assert content_type == expected_type, (
            f"{method} {path} answered {status} as {content_type!r}: {response.content[:300]!r}"
        )
        body = json.loads(response.content)
        if status >= 400:
            for name in ("type", "code", "title", "status", "detail", "request_id"):
                assert name in body, f"the problem has no {name!r}: {body}"
            assert body["status"] == status
            if response.headers.get("Idempotent-Replayed") != "true":
                assert body["request_id"] == request_id, "the body quotes the request's id"
        found = self.operation(method, path)
        if found is None:
            # Not an operation of the schema (an unknown route or method): only an
            # error can answer it, and errors have one shape.
            assert status >= 400, f"{method} {path} is not in the schema but answered {status}"
            self.validate(["components", "schemas", "Problem"], body)
            return
        template, operation = found
        documented = operation["responses"].get(str(status))
        assert documented is not None, (
            f"{status} is not documented for {method} {template} "
            f"(documented: {sorted(operation['responses'])}); body: {body}"
        )
        assert expected_type in documented.get("content", {}), (
            f"{status} of {method} {template} is not documented as {expected_type}"
        )
        where = ["paths", template, method.lower(), "responses", str(status), "content"]
        self.validate([*where, expected_type, "schema"], body)


# The client ----------------------------------------------------------------------------


class Api:
    """A Django test client that speaks for one credential and checks every answer."""

    def __init__(self, openapi: OpenApi, credential: str | None = None) -> None:
        self.openapi = openapi
        self.credential = credential
        self.client = Client()

    def using(self, credential: str | None) -> Api:
        """The same client, for another credential (None: no Authorization header)."""
        return Api(self.openapi, credential)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = JSON,
        idempotency_key: str | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TestResponse:
        sent: dict[str, str] = {}
        if self.credential is not None:
            sent["Authorization"] = f"Bearer {self.credential}"
        if idempotency_key is not None:
            sent["Idempotency-Key"] = idempotency_key
        sent.update(headers or {})
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else "")
        response = self.client.generic(
            method.upper(),
            path,
            data,
            content_type=content_type,
            headers=sent,
            query_params=dict(query or {}),
        )
        try:
            checks_as_if_committed()
        except DatabaseError as exc:
            raise AssertionError(
                f"{method} {path} answered {response.status_code} {response.content[:300]!r} "
                f"and left the test's transaction unusable: {exc}"
            ) from exc
        self.openapi.check(method, path, response)
        return response

    def get(self, path: str, query: Mapping[str, Any] | None = None, **kw: Any) -> TestResponse:
        return self.request("GET", path, query=query, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> TestResponse:
        return self.request("POST", path, {} if body is None and "raw" not in kw else body, **kw)


def checks_as_if_committed() -> None:
    """A test runs in one transaction that is rolled back, so PostgreSQL's deferred
    checks (a posting's entries balance, foreign keys) would never run. Run them after
    each request, as its commit would, then defer them again for the next one."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except IntegrityError as exc:
        raise AssertionError(f"the request left what its commit would refuse: {exc}") from exc
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def problem(response: HttpResponse | TestResponse) -> tuple[int, str, str | None]:
    """(status, code, param) of a problem+json answer."""
    body = json.loads(response.content)
    assert "code" in body, f"not a problem: {response.status_code} {body}"
    return response.status_code, body["code"], body.get("param")


# The parties ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    user: User
    organization: Organization
    secret: str  # a test-mode secret key: every scope
    key: APIKey
    usd: Account  # funded with SANDBOX_BALANCE
    eur: Account  # funded with SANDBOX_BALANCE
    payee: Account  # an empty USD account

    @property
    def holder(self) -> str:
        return self.organization.id


def make_user(name: str) -> User:
    # Not identity.user_create: nobody logs in here, and argon2 would cost ~0.1 s a user.
    return User.objects.create(username=name, email=f"{name}@example.test")


def make_party(name: str) -> Party:
    user = make_user(name)
    organization = identity.organization_create(name=f"{name.title()} Ltd", owner=user)
    usd, eur = payments.sandbox_open(holder=organization.id, currencies=("USD", "EUR"))
    payee = ledger.account_open(
        holder=organization.id, livemode=False, currency="USD", name="Payee"
    )
    issued = identity.api_key_create(organization=organization, livemode=False, created_by=user)
    return Party(
        user=user,
        organization=organization,
        secret=issued.secret,
        key=issued.api_key,
        usd=usd,
        eur=eur,
        payee=payee,
    )


# Reading the books ---------------------------------------------------------------------


def balance(account: Account) -> tuple[int, int, int]:
    """(posted, pending, available) as stored now."""
    account.refresh_from_db()
    return account.posted, account.held, account.available


@dataclass(frozen=True)
class Books:
    """Every account's balances and every transfer's state, as stored: if a refused
    request changed any of it, it wrote something."""

    accounts: dict[str, tuple[int, int, int, str]]
    transfers: dict[str, tuple[str, int | None, int]]
    entries: int

    @classmethod
    def now(cls) -> Books:
        return cls(
            accounts={
                a.id: (a.posted, a.held, a.entry_count, a.status) for a in Account.objects.all()
            },
            transfers={
                t.id: (t.status, t.settled_amount, t.version) for t in Transfer.objects.all()
            },
            entries=Entry.objects.count(),
        )


def rfc3339(moment: Any) -> str:
    """How the API writes a timestamp: RFC 3339, UTC, with a Z."""
    return str(moment.isoformat().replace("+00:00", "Z"))
