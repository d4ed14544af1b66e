from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import IntegrityError, connection, transaction
from oauth2_provider.models import get_application_model

from oauth import services as identity
from oauth.models import Application, Membership, Role, User
from tests.factories import PASSWORD, make_organization, make_user

pytestmark = pytest.mark.django_db


def test_the_user_model_is_ours_and_hashes_passwords_with_argon2() -> None:
    assert get_user_model() is User
    user = make_user("alice")
    assert user.password.startswith("argon2$")
    assert user.check_password(PASSWORD)


def test_two_users_cannot_share_an_email_in_any_case() -> None:
    make_user("alice")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="alice2", email="ALICE@example.test")


def test_an_organization_gets_an_opaque_prefixed_id_and_an_owner() -> None:
    alice = make_user("alice")
    first = make_organization("Alice Ltd", owner=alice)
    second = make_organization("Alice Two", owner=alice)
    assert first.id.startswith("org_") and len(first.id) == 30
    assert first.id != second.id
    assert Membership.objects.get(organization=first).role == Role.OWNER
    assert set(alice.organizations.all()) == {first, second}


def test_a_user_is_a_member_of_an_organization_once() -> None:
    organization = make_organization()
    bob = make_user("bob")
    identity.membership_set(organization=organization, user=bob, role=Role.VIEWER)
    identity.membership_set(organization=organization, user=bob, role=Role.DEVELOPER)
    assert Membership.objects.get(organization=organization, user=bob).role == Role.DEVELOPER
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(organization=organization, user=bob, role=Role.ADMIN)


def test_the_database_refuses_an_unknown_role() -> None:
    organization = make_organization()
    table = Membership._meta.db_table
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET role = %s WHERE organization_id = %s",  # noqa: S608
            ["emperor", organization.id],
        )


def test_the_oauth_application_model_is_swapped_for_ours() -> None:
    assert settings.OAUTH2_PROVIDER_APPLICATION_MODEL == "oauth.Application"
    assert get_application_model() is Application


def test_an_application_belongs_to_an_organization_and_hides_its_secret() -> None:
    organization = make_organization()
    issued = identity.application_create(
        organization=organization, name="Budget app", redirect_uris=["https://app.test/cb"]
    )
    application = Application.objects.get(pk=issued.application.pk)
    assert application.id.startswith("app_")
    assert application.organization == organization
    assert application.client_secret != issued.client_secret
    assert check_password(issued.client_secret, application.client_secret)
    new_secret = identity.application_rotate_secret(application=application)
    application.refresh_from_db()
    assert check_password(new_secret, application.client_secret)
    assert not check_password(issued.client_secret, application.client_secret)


def test_an_application_refuses_a_redirect_uri_with_a_wildcard() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        identity.application_create(
            organization=make_organization(), name="Bad", redirect_uris=["https://*.evil.test/"]
        )


@pytest.mark.parametrize(
    "uri",
    ["http://app.example/cb", "http://localhost/cb", "https://app.example/cb#x", "ftp://x/cb"],
)
def test_redirect_uris_are_https_or_loopback_http(uri: str) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        identity.application_create(
            organization=make_organization(), name="App", redirect_uris=[uri]
        )


def test_loopback_http_is_for_development_only(settings: object) -> None:
    from django.core.exceptions import ValidationError

    organization = make_organization()
    identity.application_create(
        organization=organization, name="Dev", redirect_uris=["http://127.0.0.1:8765/cb"]
    )
    settings.PRODUCTION = True  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        identity.application_create(
            organization=organization, name="Prod", redirect_uris=["http://127.0.0.1:8765/cb"]
        )
