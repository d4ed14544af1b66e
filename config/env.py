"""Typed readers for environment variables.

A missing or malformed variable stops start-up with one line naming it: the
process exits with status 2 and no traceback, so an operator sees the cause at once.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import dj_database_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(SystemExit):
    """Raised for a bad environment variable; exits with status 2 and one line."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(2)

    def __str__(self) -> str:
        return f"configuration error: {self.name} {self.problem}"


def fail(name: str, problem: str) -> NoReturn:
    error = ConfigError(name, problem)
    print(error, file=sys.stderr)
    raise error


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            fail(name, "is required but not set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    fail(name, f"must be true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        fail(name, f"must be an integer, got {value!r}")
    if number < minimum:
        fail(name, f"must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_secret(name: str, *, required: bool, dev_default: str, min_length: int = 32) -> str:
    """A secret: required outside development, never shorter than `min_length`."""
    value = os.environ.get(name)
    if not value:
        if required:
            fail(
                name,
                "is required in production (generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))')",
            )
        return dev_default
    if len(value) < min_length:
        fail(name, f"must be at least {min_length} characters long")
    return value


def env_database(name: str, default: str) -> dict[str, object]:
    url = env_str(name, default)
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except Exception:  # dj-database-url raises several types for a malformed URL.
        fail(name, f"is not a valid database URL: {_redact(url)!r}")
    if not config.get("ENGINE"):
        fail(name, f"names an unsupported database: {_redact(url)!r}")
    return dict(config)


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    url = env_str(name, default)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        fail(name, f"must be a URL starting with one of {', '.join(s + '://' for s in schemes)}")
    return url


def _redact(url: str) -> str:
    """Hide a password in a URL so it never reaches a log or a terminal."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
