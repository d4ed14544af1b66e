"""The settings module reads the environment, defaults for development, and fails
closed in production with one line naming the variable."""

from __future__ import annotations

import runpy
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config.env import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = str(ROOT / "config" / "settings.py")
SECRET = secrets.token_urlsafe(50)
OTHER_SECRET = secrets.token_urlsafe(50)
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": SECRET,
    "API_KEY_SECRET": OTHER_SECRET,
    "ALLOWED_HOSTS": "pay.example.com",
    "DATABASE_URL": "postgres://app@db.internal:5432/openpay",
    "REDIS_URL": "redis://cache.internal:6379/0",
}
VARIABLES = [
    "DJANGO_ENV",
    "DEBUG",
    "SECRET_KEY",
    "API_KEY_SECRET",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_PORT",
    "EMAIL_BACKEND",
    "VAR_DIR",
    "PUBLIC_BASE_URL",
    "LOG_LEVEL",
    "ADMIN_REQUIRE_TWO_FACTOR",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_LOCKOUT_MINUTES",
    "EMAIL_FILE_PATH",
]


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS)


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, **env)
    return caught.value


def test_development_defaults_need_nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings["DEBUG"] is True
    assert settings["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DATABASES"]["default"]["NAME"].endswith("var/openpay.sqlite3")
    assert settings["CELERY_BROKER_URL"].startswith("filesystem://")
    assert settings["EMAIL_BACKEND"].endswith("console.EmailBackend")
    assert settings["SECRET_KEY"] != settings["API_KEY_SECRET"]


def test_database_and_redis_urls_switch_to_postgres_and_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load(
        monkeypatch, DATABASE_URL="postgres://u:p@db:5432/pay", REDIS_URL="redis://r:6379/1"
    )
    database = settings["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("db", "pay")
    assert settings["CELERY_BROKER_URL"] == "redis://r:6379/1"
    assert settings["CACHES"]["default"]["LOCATION"] == "redis://r:6379/1"


def test_production_with_everything_configured_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION)
    assert settings["DEBUG"] is False
    assert settings["SECRET_KEY"] == SECRET
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["EMAIL_BACKEND"].endswith("smtp.EmailBackend")


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "API_KEY_SECRET", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"]
)
def test_production_refuses_to_start_without(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    env = {name: value for name, value in PRODUCTION.items() if name != missing}
    assert refused(monkeypatch, **env).name == missing


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DJANGO_ENV", "staging"),
        ("EMAIL_PORT", "twenty-five"),
        ("EMAIL_PORT", "0"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "oracle-ish://db/x"),
        ("REDIS_URL", "http://cache:6379"),
        ("PUBLIC_BASE_URL", "ftp://example.com"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_malformed_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    assert refused(monkeypatch, **{name: value}).name == name


def test_production_refuses_weak_or_reused_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refused(monkeypatch, **{**PRODUCTION, "SECRET_KEY": "short"}).name == "SECRET_KEY"
    same = {**PRODUCTION, "API_KEY_SECRET": SECRET}
    assert refused(monkeypatch, **same).name == "API_KEY_SECRET"
    debug = {**PRODUCTION, "DEBUG": "true"}
    assert refused(monkeypatch, **debug).name == "DEBUG"
    sqlite = {**PRODUCTION, "DATABASE_URL": "sqlite:///tmp/x.sqlite3"}
    assert refused(monkeypatch, **sqlite).name == "DATABASE_URL"


def test_a_password_in_a_bad_database_url_is_not_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = refused(monkeypatch, DATABASE_URL="oracle-ish://app:hunter2@db/x")
    assert "hunter2" not in str(error)
    assert "DATABASE_URL" in str(error)


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_failure_is_one_line_without_traceback() -> None:
    result = run_manage("check", env={"DJANGO_ENV": "production"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: SECRET_KEY is required in production (generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_check_deploy_reports_nothing_with_production_settings() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
