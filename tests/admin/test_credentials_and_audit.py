"""Credentials in the admin, and the audit log that records every change to them: API
keys shown by prefix and last four only and revocable by developers and up,
applications editable by developers and up (never their secret), memberships changed
by platform superusers only, and an audit log that admins and owners read but nobody
edits."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from oauth import services as identity
from oauth.models import Application, AuditEntry, Membership, Role
from tests.admin.conftest import Cast, post, text, verified_client

pytestmark = pytest.mark.django_db

KEYS = "/admin/oauth/apikey/"


def application_page(application: Application) -> str:
    return f"/admin/oauth/application/{application.id}/change/"


# API keys ---------------------------------------------------------------------------------


def test_a_key_is_shown_by_its_prefix_and_last_four_only(cast: Cast) -> None:
    key = cast.alice_books.api_key
    client = verified_client(cast.dev)
    for page in (KEYS, f"{KEYS}{key.id}/change/"):
        body = text(client.get(page))
        assert key.redacted in body
        assert key.digest not in body


def test_a_developer_revokes_a_key_after_confirming_and_it_stops_working(cast: Cast) -> None:
    key = cast.alice_books.api_key
    client = verified_client(cast.dev)
    confirm = post(client, KEYS, {"action": "revoke", "_selected_action": [key.id]})
    assert confirm.status_code == 200 and "Revoke API keys" in text(confirm)
    key.refresh_from_db()
    assert key.revoked_at is None

    post(client, KEYS, {"action": "revoke", "_selected_action": [key.id], "confirm": "yes"})
    key.refresh_from_db()
    assert key.revoked_at is not None
    [line] = AuditEntry.objects.filter(action="api_key.revoked")
    assert (line.actor, line.target, line.organization_id) == (
        "dev",
        key.id,
        cast.alice_books.organization.id,
    )
    assert line.detail == {"via": "admin", "key": key.redacted}


def test_bobs_key_cannot_be_revoked_by_alices_staff(cast: Cast) -> None:
    key = cast.bob_books.api_key
    post(
        verified_client(cast.alice),
        KEYS,
        {"action": "revoke", "_selected_action": [key.id], "confirm": "yes"},
    )
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEntry.objects.filter(action="api_key.revoked").exists()


def test_a_webhook_endpoint_page_never_shows_its_signing_secret(cast: Cast) -> None:
    endpoint = cast.alice_books.endpoint
    page = text(
        verified_client(cast.alice).get(f"/admin/payments/webhookendpoint/{endpoint.id}/change/")
    )
    assert endpoint.url in page
    assert endpoint.secret not in page


# Applications -------------------------------------------------------------------------------


def test_a_developer_edits_an_application_and_the_change_is_audited(cast: Cast) -> None:
    application = cast.alice_books.application
    response = post(
        verified_client(cast.dev),
        application_page(application),
        {
            "name": "Renamed",
            "description": "Reads balances",
            "redirect_uris": "https://example.com/callback\nhttps://example.com/other",
            "skip_authorization": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.name == "Renamed"
    assert application.redirect_uris == "https://example.com/callback https://example.com/other"
    assert application.skip_authorization is False, "not editable here"
    [line] = AuditEntry.objects.filter(action="application.updated")
    assert (line.actor, line.target) == ("dev", application.id)
    assert "Name" in str(line.detail["change"])


@pytest.mark.parametrize(
    "uris",
    [
        "http://example.com/callback",
        "https://example.com/cb#fragment",
        "https://*.example.com/",
        "",
    ],
)
def test_a_bad_redirect_uri_is_refused_next_to_the_field(cast: Cast, uris: str) -> None:
    application = cast.alice_books.application
    response = post(
        verified_client(cast.dev),
        application_page(application),
        {"name": "Renamed", "description": "", "redirect_uris": uris, "_save": "Save"},
    )
    assert response.status_code == 200
    assert "field-redirect_uris" in text(response) and "errorlist" in text(response)
    application.refresh_from_db()
    assert application.name == "alice budgeting"
    assert not AuditEntry.objects.filter(action="application.updated").exists()


def test_the_application_page_never_shows_the_client_secret(cast: Cast) -> None:
    application = cast.alice_books.application
    body = text(verified_client(cast.alice).get(application_page(application)))
    assert application.client_id in body
    assert application.client_secret not in body
    assert 'name="client_secret"' not in body


def test_a_viewer_cannot_edit_an_application(cast: Cast) -> None:
    application = cast.alice_books.application
    response = post(
        verified_client(cast.avery),
        application_page(application),
        {"name": "Hijacked", "redirect_uris": "https://example.com/x", "_save": "Save"},
    )
    assert response.status_code in (403, 404)
    application.refresh_from_db()
    assert application.name == "alice budgeting"


def test_bob_cannot_edit_alices_application(cast: Cast) -> None:
    application = cast.alice_books.application
    response = post(
        verified_client(cast.bob),
        application_page(application),
        {"name": "Hijacked", "redirect_uris": "https://example.com/x", "_save": "Save"},
    )
    assert response.status_code == 404
    application.refresh_from_db()
    assert application.name == "alice budgeting"


# Memberships ------------------------------------------------------------------------------


def membership(cast: Cast, username: str) -> Membership:
    return Membership.objects.get(
        organization=cast.alice_books.organization, user__username=username
    )


def test_merchant_staff_see_their_members_but_cannot_change_them(cast: Cast) -> None:
    avery = membership(cast, "avery")
    client = verified_client(cast.alice)
    assert "avery" in text(client.get("/admin/oauth/membership/"))
    response = post(
        client, f"/admin/oauth/membership/{avery.pk}/change/", {"role": "owner", "_save": "Save"}
    )
    assert response.status_code == 403
    avery.refresh_from_db()
    assert avery.role == Role.VIEWER


def test_a_superuser_changes_a_role_and_it_is_audited(cast: Cast) -> None:
    avery = membership(cast, "avery")
    response = post(
        verified_client(cast.root),
        f"/admin/oauth/membership/{avery.pk}/change/",
        {"role": "developer", "_save": "Save"},
    )
    assert response.status_code == 302
    avery.refresh_from_db()
    assert avery.role == Role.DEVELOPER
    [line] = AuditEntry.objects.filter(action="membership.updated")
    assert (line.actor, line.organization_id) == ("root", cast.alice_books.organization.id)


def test_the_last_owner_is_neither_demoted_nor_removed(cast: Cast) -> None:
    owner = membership(cast, "alice")
    client = verified_client(cast.root)
    response = post(
        client, f"/admin/oauth/membership/{owner.pk}/change/", {"role": "admin", "_save": "Save"}
    )
    assert response.status_code == 200 and "last owner" in text(response)
    delete = f"/admin/oauth/membership/{owner.pk}/delete/"
    assert post(client, delete, {"post": "yes"}).status_code == 403
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_membership_changes_on_the_organization_page_are_audited_one_by_one(cast: Cast) -> None:
    organization = cast.alice_books.organization
    rows = list(organization.memberships.order_by("pk"))
    data = {
        "name": organization.name,
        "api_rate_limit": "",
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(len(rows)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        data[f"memberships-{index}-id"] = str(row.pk)
        data[f"memberships-{index}-organization"] = organization.id
        data[f"memberships-{index}-user"] = str(row.user_id)
        data[f"memberships-{index}-role"] = "admin" if row.user.username == "avery" else row.role
        if row.user.username == "dev":
            data[f"memberships-{index}-DELETE"] = "on"
    response = post(
        verified_client(cast.root), f"/admin/oauth/organization/{organization.id}/change/", data
    )
    assert response.status_code == 302, text(response)
    assert membership(cast, "avery").role == Role.ADMIN
    assert not Membership.objects.filter(organization=organization, user=cast.dev).exists()
    lines = AuditEntry.objects.filter(action__startswith="membership.")
    changes = {(line.action, line.detail["user"]) for line in lines}
    assert {("membership.updated", "avery"), ("membership.deleted", "dev")} <= changes


# The audit log ---------------------------------------------------------------------------------


def test_admins_and_owners_read_their_audit_log(cast: Cast) -> None:
    identity.audit_record(
        action="api_key.revoked",
        actor=cast.alice,
        organization_id=cast.alice_books.organization.id,
        target="key_x",
        ip_address="198.51.100.7",
    )
    line = AuditEntry.objects.get(target="key_x")
    page = text(verified_client(cast.alice).get(f"/admin/oauth/auditentry/{line.id}/change/"))
    assert "198.51.100.7" in page and "api_key.revoked" in page and "alice" in page


@pytest.mark.parametrize("user", ["avery", "dev"])
def test_viewers_and_developers_do_not_read_the_audit_log(cast: Cast, user: str) -> None:
    client = verified_client(getattr(cast, user))
    assert client.get("/admin/oauth/auditentry/").status_code == 403


def test_the_platforms_own_changes_are_audited_too(cast: Cast) -> None:
    device = TOTPDevice.objects.create(user=cast.bob, name="old phone", confirmed=True)
    response = post(
        verified_client(cast.root),
        f"/admin/otp_totp/totpdevice/{device.pk}/delete/",
        {"post": "yes"},
    )
    assert response.status_code == 302
    [line] = AuditEntry.objects.filter(action="totpdevice.deleted")
    assert (line.actor, line.target) == ("root", str(device.pk))
