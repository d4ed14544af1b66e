"""Writes to identity: users, organizations, memberships and applications."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from oauth2_provider.generators import generate_client_secret

from oauth.models import Application, Membership, Organization, Role, User


def user_create(*, username: str, email: str, password: str, is_staff: bool = False) -> User:
    user = User(username=username, email=email.strip().lower(), is_staff=is_staff)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    """A new tenant with its first member, the owner."""
    organization = Organization(name=name.strip())
    organization.full_clean()
    organization.save()
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    return organization


def membership_set(*, organization: Organization, user: User, role: Role) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


@dataclass(frozen=True)
class IssuedApplication:
    application: Application
    # Shown once: only a hash of it is stored.
    client_secret: str


def application_create(
    *,
    organization: Organization,
    name: str,
    redirect_uris: list[str],
    confidential: bool = True,
    created_by: User | None = None,
    description: str = "",
) -> IssuedApplication:
    client_secret = generate_client_secret() if confidential else ""
    application = Application(
        organization=organization,
        name=name,
        description=description,
        user=created_by,
        redirect_uris=" ".join(redirect_uris),
        client_type=(
            Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC
        ),
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        client_secret=client_secret,
        hash_client_secret=True,
    )
    application.full_clean()
    application.save()
    return IssuedApplication(application=application, client_secret=client_secret)


def application_rotate_secret(*, application: Application) -> str:
    """A new client secret, shown once; the old one stops working at once."""
    client_secret: str = generate_client_secret()
    application.client_secret = client_secret
    application.save(update_fields=["client_secret", "updated"])
    return client_secret
