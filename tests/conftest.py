"""Shared fixtures, and the rules for tests that need real services.

Tests marked `postgres` run only on PostgreSQL, `redis` only with REDIS_URL and
`browser` only where Chromium is installed; on a
laptop without them they are skipped with the reason. CI sets REQUIRE_ALL_TESTS=1 so
that, there, a single skipped test fails the run: nothing is quietly left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def on_postgres() -> bool:
    return bool(settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://... (row locks, triggers)"
    )
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    skip_browser = pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM} (apt install chromium)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres():
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)
        if "browser" in item.keywords and not Path(CHROMIUM).exists():
            item.add_marker(skip_browser)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_ALL_TESTS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        print(f"\nREQUIRE_ALL_TESTS=1 but {skipped} test(s) were skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def constraints_checked_now(django_db_setup: None, db: None) -> None:
    """Tests run inside a transaction that is rolled back, so PostgreSQL's deferred
    checks (a transfer's entries sum to zero) would never run: run them per statement."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
