"""The applications pages: alice (owner) registers and edits Alice Ltd's OAuth clients, bob
(viewer) only looks, charlie (another organization) sees none of them, and every client
secret is shown once."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from django.test import Client

from oauth import services as identity
from oauth.models import Application, AuditEntry, Organization, Role
from tests.factories import add_member, make_user
from tests.portal.conftest import Cast, client_for, post

REDIRECT_URI = "https://alice.example/callback"
SHOWN_SECRET = re.compile(r'<code id="client-secret" data-secret>([^<]+)</code>')


def shown_secret(page: Any) -> str:
    match = SHOWN_SECRET.search(page.content.decode())
    assert match, "no client secret on the page"
    return match.group(1)


def field_errors(page: Any, field: str) -> str:
    """The error list rendered next to `field`, empty when there is none."""
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page.content.decode(), re.S
    )
    return match.group(1) if match else ""


def app_of(organization: Organization, **extra: Any) -> identity.IssuedApplication:
    return identity.application_create(
        organization=organization, name="Alice's app", redirect_uris=[REDIRECT_URI], **extra
    )


def app_form(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Budget buddy",
        "description": "Reads balances",
        "redirect_uris": REDIRECT_URI,
        "client_type": "confidential",
        **fields,
    }


def client_credentials(application: Application, secret: str) -> int:
    """The token endpoint's answer to the application authenticating with `secret`."""
    basic = base64.b64encode(f"{application.client_id}:{secret}".encode()).decode()
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "accounts:read"},
        headers={"Authorization": f"Basic {basic}"},
    )
    return int(answer.status_code)


def reread(application: Application) -> Application:
    fresh: Application = Application.objects.get(pk=application.pk)
    return fresh


# Who sees what ------------------------------------------------------------------------


def test_alice_sees_her_applications_with_their_client_ids(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    page = client_for(cast.alice).get("/apps/")
    assert page.status_code == 200
    html = page.content.decode()
    assert issued.application.client_id in html
    assert f'href="/apps/{issued.application.id}/"' in html
    assert 'href="/apps/new/"' in html
    assert issued.client_secret not in html


def test_bob_the_viewer_sees_the_list_and_details_but_no_controls(cast: Cast) -> None:
    application = app_of(cast.alice_org).application
    bob = client_for(cast.bob)
    listing = bob.get("/apps/").content.decode()
    assert application.client_id in listing
    assert "/apps/new/" not in listing
    detail = bob.get(f"/apps/{application.id}/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert application.client_id in html
    assert 'name="redirect_uris"' not in html
    assert "/rotate-secret/" not in html
    assert bob.get("/apps/new/").status_code == 403


def test_bob_the_viewers_posts_are_refused_and_change_nothing(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    application = issued.application
    bob = client_for(cast.bob)
    assert post(bob, "/apps/new/", app_form()).status_code == 403
    assert post(bob, f"/apps/{application.id}/", app_form(name="Bob's")).status_code == 403
    assert post(bob, f"/apps/{application.id}/rotate-secret/").status_code == 403
    assert Application.objects.count() == 1
    assert reread(application).name == "Alice's app"
    assert client_credentials(application, issued.client_secret) == 200
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("suffix", ["", "rotate-secret/"])
def test_charlie_gets_404_for_alices_applications(cast: Cast, suffix: str) -> None:
    issued = app_of(cast.alice_org)
    charlie = client_for(cast.charlie)
    url = f"/apps/{issued.application.id}/{suffix}"
    if not suffix:
        assert charlie.get(url).status_code == 404
    assert post(charlie, url, app_form(name="Charlie's")).status_code == 404
    assert reread(issued.application).name == "Alice's app"
    assert client_credentials(issued.application, issued.client_secret) == 200
    assert issued.application.client_id not in charlie.get("/apps/").content.decode()


@pytest.mark.parametrize("url", ["/apps/", "/apps/new/", "/apps/app_x/"])
def test_anonymous_visitors_are_sent_to_log_in(db: None, url: str) -> None:
    page = Client().get(url)
    assert page.status_code == 302
    assert page["Location"].startswith(f"/login/?next={url}")


def test_a_post_without_the_csrf_token_is_refused(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    alice = client_for(cast.alice)
    assert alice.post("/apps/new/", app_form()).status_code == 403
    assert alice.post(f"/apps/{issued.application.id}/rotate-secret/").status_code == 403
    assert Application.objects.count() == 1
    assert client_credentials(issued.application, issued.client_secret) == 200


def test_a_developer_may_register_an_application(cast: Cast) -> None:
    dave = make_user("dave")
    add_member(cast.alice_org, dave, Role.DEVELOPER)
    assert post(client_for(dave), "/apps/new/", app_form()).status_code == 302
    assert Application.objects.get().user == dave


# Registering --------------------------------------------------------------------------


def test_a_new_confidential_client_shows_its_secret_once_and_the_secret_works(
    cast: Cast,
) -> None:
    alice = client_for(cast.alice)
    page = post(alice, "/apps/new/", app_form(), follow=True)
    assert page.status_code == 200
    application = Application.objects.get()
    assert application.organization == cast.alice_org
    assert application.name == "Budget buddy"
    assert application.description == "Reads balances"
    assert application.redirect_uris == REDIRECT_URI
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    secret = shown_secret(page)
    assert "no-store" in page["Cache-Control"]
    assert application.client_id in page.content.decode()
    assert client_credentials(application, secret) == 200

    assert secret not in alice.get(f"/apps/{application.id}/").content.decode()
    assert secret not in alice.get("/apps/").content.decode()


def test_a_public_client_gets_no_secret_and_no_rotate_button(cast: Cast) -> None:
    alice = client_for(cast.alice)
    page = post(alice, "/apps/new/", app_form(client_type="public"), follow=True)
    application = Application.objects.get()
    assert application.client_type == Application.CLIENT_PUBLIC
    html = page.content.decode()
    assert "data-secret" not in html
    assert "/rotate-secret/" not in html
    refused = post(alice, f"/apps/{application.id}/rotate-secret/", follow=True)
    assert "A public client has no secret to rotate." in refused.content.decode()
    assert "data-secret" not in refused.content.decode()
    assert reread(application).client_secret == application.client_secret
    assert not AuditEntry.objects.filter(action="application.secret_rotated").exists()


def test_several_redirect_uris_one_per_line_are_kept_in_order_without_repeats(
    cast: Cast,
) -> None:
    uris = "https://a.example/cb\r\nhttp://127.0.0.1:8080/cb\n\nhttps://a.example/cb\n"
    post(client_for(cast.alice), "/apps/new/", app_form(redirect_uris=uris))
    assert Application.objects.get().redirect_uris.split() == [
        "https://a.example/cb",
        "http://127.0.0.1:8080/cb",
    ]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://alice.example/cb", "use https"),
        ("http://localhost/cb", "use https"),
        ("https://alice.example/cb#done", "no fragments or wildcards"),
        ("https://*.alice.example/cb", "no fragments or wildcards"),
        ("https://alice.example/*", "no fragments or wildcards"),
        ("ftp://alice.example/cb", "use https"),
        ("alice.example/cb", "use https"),
        ("https:///cb", "no fragments or wildcards"),
    ],
)
def test_a_bad_redirect_uri_is_refused_next_to_the_field(
    cast: Cast, uri: str, message: str
) -> None:
    page = post(client_for(cast.alice), "/apps/new/", app_form(redirect_uris=uri))
    assert page.status_code == 200
    assert message in field_errors(page, "redirect_uris")
    assert not Application.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "n" * 256}, "name"),
        ({"description": "d" * 2001}, "description"),
        ({"redirect_uris": ""}, "redirect_uris"),
        ({"redirect_uris": " \n "}, "redirect_uris"),
        ({"redirect_uris": "https://a.example/" + "x" * 5000}, "redirect_uris"),
        (
            {"redirect_uris": "\n".join(f"https://a.example/{n}" for n in range(21))},
            "redirect_uris",
        ),
        ({"client_type": "secretive"}, "client_type"),
        ({"client_type": ""}, "client_type"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_registers_nothing(
    cast: Cast, fields: dict[str, Any], field: str
) -> None:
    page = post(client_for(cast.alice), "/apps/new/", app_form(**fields))
    assert page.status_code == 200
    assert field_errors(page, field), page.content.decode()
    assert not Application.objects.exists()


def test_registering_writes_an_audit_line_without_the_secret(cast: Cast) -> None:
    page = post(client_for(cast.alice), "/apps/new/", app_form(), follow=True)
    secret = shown_secret(page)
    application = Application.objects.get()
    entry = AuditEntry.objects.get(action="application.created")
    assert entry.target == application.id
    assert entry.actor == "alice"
    assert entry.organization_id == cast.alice_org.id
    assert entry.detail["redirect_uris"] == [REDIRECT_URI]
    assert secret not in json.dumps(entry.detail)
    assert application.client_secret not in json.dumps(entry.detail)


# Editing ------------------------------------------------------------------------------


def test_alice_edits_name_description_and_redirect_uris(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    application = issued.application
    alice = client_for(cast.alice)
    form = alice.get(f"/apps/{application.id}/").content.decode()
    assert REDIRECT_URI in form
    new_uris = f"{REDIRECT_URI}\nhttps://alice.example/other"
    saved = post(
        alice,
        f"/apps/{application.id}/",
        {"name": "Renamed", "description": "Now with more", "redirect_uris": new_uris},
    )
    assert saved.status_code == 302
    edited = reread(application)
    assert edited.name == "Renamed"
    assert edited.description == "Now with more"
    assert edited.redirect_uris.split() == [REDIRECT_URI, "https://alice.example/other"]
    assert edited.client_type == Application.CLIENT_CONFIDENTIAL
    assert client_credentials(edited, issued.client_secret) == 200

    entry = AuditEntry.objects.get(action="application.updated")
    assert entry.target == application.id
    assert entry.detail["changed"] == ["name", "description", "redirect_uris"]
    assert entry.detail["redirect_uris"] == {
        "before": [REDIRECT_URI],
        "after": [REDIRECT_URI, "https://alice.example/other"],
    }


def test_an_edit_with_a_bad_redirect_uri_is_refused_and_changes_nothing(cast: Cast) -> None:
    application = app_of(cast.alice_org).application
    page = post(
        client_for(cast.alice),
        f"/apps/{application.id}/",
        {"name": "Renamed", "description": "", "redirect_uris": "https://evil.example/#x"},
    )
    assert page.status_code == 200
    assert "no fragments or wildcards" in field_errors(page, "redirect_uris")
    unchanged = reread(application)
    assert unchanged.name == "Alice's app"
    assert unchanged.redirect_uris == REDIRECT_URI
    assert not AuditEntry.objects.exists()


def test_the_client_type_cannot_be_changed_by_an_edit(cast: Cast) -> None:
    application = app_of(cast.alice_org).application
    post(
        client_for(cast.alice),
        f"/apps/{application.id}/",
        {**app_form(client_type="public"), "name": "Same app"},
    )
    edited = reread(application)
    assert edited.name == "Same app"
    assert edited.client_type == Application.CLIENT_CONFIDENTIAL


# Rotating the secret ------------------------------------------------------------------


def test_a_rotated_secret_is_shown_once_and_the_old_one_stops_matching(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    application = issued.application
    alice = client_for(cast.alice)
    assert "/rotate-secret/" in alice.get(f"/apps/{application.id}/").content.decode()
    page = post(alice, f"/apps/{application.id}/rotate-secret/", follow=True)
    new_secret = shown_secret(page)
    assert new_secret != issued.client_secret
    assert client_credentials(application, issued.client_secret) == 401
    assert client_credentials(application, new_secret) == 200
    assert new_secret not in alice.get(f"/apps/{application.id}/").content.decode()

    entry = AuditEntry.objects.get(action="application.secret_rotated")
    assert entry.target == application.id
    assert entry.actor == "alice"
    assert new_secret not in json.dumps(entry.detail)


def test_rotating_the_secret_takes_a_post(cast: Cast) -> None:
    issued = app_of(cast.alice_org)
    page = client_for(cast.alice).get(f"/apps/{issued.application.id}/rotate-secret/")
    assert page.status_code == 405
    assert client_credentials(issued.application, issued.client_secret) == 200


def test_the_nav_links_to_the_applications_page(cast: Cast) -> None:
    assert 'href="/apps/"' in client_for(cast.alice).get("/").content.decode()
