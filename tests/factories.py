"""Builders for test data, through the same services the product uses."""

from __future__ import annotations

import itertools

from oauth import services as identity
from oauth.models import Organization, Role, User

_counter = itertools.count()
PASSWORD = "a-long-test-password-42"


def make_user(name: str | None = None, **extra: bool) -> User:
    name = name or f"user{next(_counter)}"
    return identity.user_create(
        username=name, email=f"{name}@example.test", password=PASSWORD, **extra
    )


def make_organization(name: str = "Alice Ltd", owner: User | None = None) -> Organization:
    return identity.organization_create(name=name, owner=owner or make_user())


def add_member(organization: Organization, user: User, role: Role) -> None:
    identity.membership_set(organization=organization, user=user, role=role)
