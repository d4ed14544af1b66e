"""The API keys pages: alice (owner) manages Alice Ltd's keys, bob (viewer) only looks,
charlie (another organization) sees none of them, and every secret is shown once."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from oauth import services as identity
from oauth.models import APIKey, AuditEntry, Organization, Role, Scope, User
from tests.factories import add_member, make_user
from tests.portal.conftest import Cast, client_for, post

SHOWN_SECRET = re.compile(r'<code id="new-secret" data-secret>([^<]+)</code>')


def shown_secret(page: Any) -> str:
    match = SHOWN_SECRET.search(page.content.decode())
    assert match, "no secret on the page"
    return match.group(1)


def field_errors(page: Any, field: str) -> str:
    """The error list rendered next to `field`, empty when there is none."""
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page.content.decode(), re.S
    )
    return match.group(1) if match else ""


def key_of(organization: Organization, **extra: Any) -> identity.IssuedKey:
    return identity.api_key_create(
        organization=organization, livemode=False, name="server", **extra
    )


def developer_of(organization: Organization) -> User:
    dave = make_user("dave")
    add_member(organization, dave, Role.DEVELOPER)
    return dave


def create_form(**fields: Any) -> dict[str, Any]:
    return {"name": "billing", "mode": "test", "access": "full", **fields}


def reread(api_key: APIKey) -> APIKey:
    return APIKey.objects.get(pk=api_key.pk)


# Who sees what ------------------------------------------------------------------------


def test_alice_sees_her_keys_by_prefix_and_last_four_only(cast: Cast) -> None:
    issued = identity.api_key_create(
        organization=cast.alice_org,
        livemode=False,
        name="billing server",
        scopes=[Scope.ACCOUNTS_READ],
        created_by=cast.alice,
    )
    page = client_for(cast.alice).get("/keys/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "billing server" in html
    assert f"rk_test_…{issued.secret[-4:]}" in html
    assert "accounts:read" in html
    assert "by alice" in html
    assert issued.secret not in html
    assert 'href="/keys/new/"' in html


def test_bob_the_viewer_sees_the_list_but_no_controls(cast: Cast) -> None:
    issued = key_of(cast.alice_org)
    page = client_for(cast.bob).get("/keys/")
    assert page.status_code == 200
    html = page.content.decode()
    assert issued.api_key.redacted in html
    assert "/keys/new/" not in html
    assert "/rotate/" not in html
    assert "/revoke/" not in html


def test_bob_the_viewer_cannot_open_the_create_rotate_or_revoke_pages(cast: Cast) -> None:
    key_id = key_of(cast.alice_org).api_key.id
    bob = client_for(cast.bob)
    for url in ["/keys/new/", f"/keys/{key_id}/rotate/", f"/keys/{key_id}/revoke/"]:
        assert bob.get(url).status_code == 403, url


def test_bob_the_viewers_posts_are_refused_and_change_nothing(cast: Cast) -> None:
    api_key = key_of(cast.alice_org).api_key
    bob = client_for(cast.bob)
    assert post(bob, "/keys/new/", create_form()).status_code == 403
    assert post(bob, f"/keys/{api_key.id}/rotate/", {"grace": "0"}).status_code == 403
    assert post(bob, f"/keys/{api_key.id}/revoke/").status_code == 403
    assert APIKey.objects.filter(organization=cast.alice_org).count() == 1
    unchanged = reread(api_key)
    assert unchanged.revoked_at is None
    assert unchanged.replaced_by_id is None
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("action", ["created", "rotate", "revoke"])
def test_charlie_gets_404_for_alices_keys_on_every_page(cast: Cast, action: str) -> None:
    issued = key_of(cast.alice_org)
    charlie = client_for(cast.charlie)
    url = f"/keys/{issued.api_key.id}/{action}/"
    assert charlie.get(url).status_code == 404
    if action != "created":
        assert post(charlie, url, {"grace": "0"}).status_code == 404
    unchanged = reread(issued.api_key)
    assert unchanged.revoked_at is None
    assert unchanged.replaced_by_id is None
    assert identity.api_key_authenticate(secret=issued.secret).id == issued.api_key.id


def test_charlies_list_does_not_show_alices_keys(cast: Cast) -> None:
    alices = key_of(cast.alice_org).api_key
    assert alices.redacted not in client_for(cast.charlie).get("/keys/").content.decode()


def test_an_unknown_key_id_is_404(cast: Cast) -> None:
    alice = client_for(cast.alice)
    assert alice.get("/keys/key_nothing/rotate/").status_code == 404
    assert post(alice, "/keys/key_nothing/revoke/").status_code == 404


@pytest.mark.parametrize("url", ["/keys/", "/keys/new/", "/keys/key_x/rotate/"])
def test_anonymous_visitors_are_sent_to_log_in(db: None, url: str) -> None:
    page = Client().get(url)
    assert page.status_code == 302
    assert page["Location"].startswith(f"/login/?next={url}")


def test_a_post_without_the_csrf_token_is_refused(cast: Cast) -> None:
    api_key = key_of(cast.alice_org).api_key
    alice = client_for(cast.alice)
    assert alice.post("/keys/new/", create_form()).status_code == 403
    assert alice.post(f"/keys/{api_key.id}/revoke/").status_code == 403
    assert APIKey.objects.count() == 1
    assert reread(api_key).revoked_at is None


def test_the_list_page_takes_no_posts(cast: Cast) -> None:
    assert post(client_for(cast.alice), "/keys/").status_code == 405


# Creating -----------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_authenticates(cast: Cast) -> None:
    alice = client_for(cast.alice)
    page = post(alice, "/keys/new/", create_form(name="laptop"), follow=True)
    assert page.status_code == 200
    secret = shown_secret(page)
    assert secret.startswith("sk_test_")
    assert "no-store" in page["Cache-Control"]
    assert 'data-copy="#new-secret"' in page.content.decode()

    api_key = identity.api_key_authenticate(secret=secret)
    assert api_key.organization_id == cast.alice_org.id
    assert api_key.name == "laptop"
    assert not api_key.livemode
    assert not api_key.restricted
    assert api_key.created_by == cast.alice

    assert secret not in alice.get(page.request["PATH_INFO"]).content.decode()
    assert secret not in alice.get("/keys/").content.decode()


def test_a_restricted_key_keeps_only_the_chosen_scopes(cast: Cast) -> None:
    alice = client_for(cast.alice)
    chosen = [Scope.TRANSFERS_READ, Scope.ACCOUNTS_READ]
    page = post(alice, "/keys/new/", create_form(access="restricted", scopes=chosen), follow=True)
    secret = shown_secret(page)
    assert secret.startswith("rk_test_")
    api_key = identity.api_key_authenticate(secret=secret)
    assert api_key.restricted
    assert api_key.scopes == sorted(chosen)


def test_a_full_access_key_ignores_scopes_ticked_by_mistake(cast: Cast) -> None:
    post(client_for(cast.alice), "/keys/new/", create_form(scopes=[Scope.ACCOUNTS_READ]))
    api_key = APIKey.objects.get()
    assert not api_key.restricted
    assert api_key.scopes == sorted(Scope.values)


def test_an_expiry_date_ends_the_key_at_the_end_of_that_day_utc(cast: Cast) -> None:
    on = timezone.now().date() + dt.timedelta(days=30)
    post(client_for(cast.alice), "/keys/new/", create_form(expires_on=on.isoformat()))
    expected = dt.datetime.combine(on + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    assert APIKey.objects.get().expires_at == expected


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (-1, "Choose a date after today."),
        (0, "Choose a date after today."),
        (366, "Choose a date at most a year from today."),
    ],
)
def test_an_expiry_in_the_past_today_or_beyond_a_year_is_refused_next_to_the_field(
    cast: Cast, days: int, message: str
) -> None:
    on = timezone.now().date() + dt.timedelta(days=days)
    page = post(client_for(cast.alice), "/keys/new/", create_form(expires_on=on.isoformat()))
    assert page.status_code == 200
    assert message in field_errors(page, "expires_on")
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"mode": "sandbox"}, "mode"),
        ({"mode": ""}, "mode"),
        ({"access": "everything"}, "access"),
        ({"access": "restricted"}, "scopes"),
        ({"access": "restricted", "scopes": ["admin:all"]}, "scopes"),
        ({"expires_on": "tomorrow"}, "expires_on"),
        ({"expires_on": "99999-12-31"}, "expires_on"),
        ({"expires_on": "9" * 10_000}, "expires_on"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_creates_nothing(
    cast: Cast, fields: dict[str, Any], field: str
) -> None:
    page = post(client_for(cast.alice), "/keys/new/", create_form(**fields))
    assert page.status_code == 200
    assert field_errors(page, field), page.content.decode()
    assert not APIKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_developer_may_create_test_keys_but_not_live_ones(cast: Cast) -> None:
    dave = client_for(developer_of(cast.alice_org))
    refused = post(dave, "/keys/new/", create_form(mode="live"))
    assert refused.status_code == 200
    assert "Only an owner or admin may create live keys." in field_errors(refused, "mode")
    assert not APIKey.objects.exists()

    assert post(dave, "/keys/new/", create_form(mode="test")).status_code == 302
    assert APIKey.objects.get().livemode is False


def test_an_owner_may_create_a_live_key(cast: Cast) -> None:
    page = post(client_for(cast.alice), "/keys/new/", create_form(mode="live"), follow=True)
    assert shown_secret(page).startswith("sk_live_")
    assert APIKey.objects.get().livemode is True


def test_a_developer_may_not_rotate_or_revoke_a_live_key(cast: Cast) -> None:
    live = identity.api_key_create(organization=cast.alice_org, livemode=True).api_key
    dave = client_for(developer_of(cast.alice_org))
    assert dave.get(f"/keys/{live.id}/rotate/").status_code == 403
    assert post(dave, f"/keys/{live.id}/rotate/", {"grace": "0"}).status_code == 403
    assert post(dave, f"/keys/{live.id}/revoke/").status_code == 403
    assert reread(live).revoked_at is None
    assert reread(live).replaced_by_id is None
    assert f"/keys/{live.id}/rotate/" not in dave.get("/keys/").content.decode()


def test_creating_a_key_writes_an_audit_line_without_the_secret(cast: Cast) -> None:
    page = post(client_for(cast.alice), "/keys/new/", create_form(), follow=True)
    secret = shown_secret(page)
    entry = AuditEntry.objects.get(action="api_key.created")
    api_key = APIKey.objects.get()
    assert entry.target == api_key.id
    assert entry.actor == "alice"
    assert entry.organization_id == cast.alice_org.id
    assert entry.detail["key"] == api_key.redacted
    assert secret not in json.dumps(entry.detail)
    assert api_key.digest not in json.dumps(entry.detail)


# Rotating -----------------------------------------------------------------------------


def test_rotation_shows_the_new_key_once_and_both_work_during_the_grace(cast: Cast) -> None:
    old = key_of(cast.alice_org)
    alice = client_for(cast.alice)
    form = alice.get(f"/keys/{old.api_key.id}/rotate/")
    assert form.status_code == 200
    assert "Keep the old key working for" in form.content.decode()

    page = post(alice, f"/keys/{old.api_key.id}/rotate/", {"grace": "86400"}, follow=True)
    new_secret = shown_secret(page)
    assert new_secret != old.secret
    assert identity.api_key_authenticate(secret=old.secret).id == old.api_key.id
    new_key = identity.api_key_authenticate(secret=new_secret)
    assert new_key.name == old.api_key.name
    assert new_key.created_by == cast.alice

    rotated = reread(old.api_key)
    assert rotated.replaced_by_id == new_key.id
    assert rotated.expires_at is not None
    grace_left = rotated.expires_at - timezone.now()
    assert dt.timedelta(hours=23) < grace_left <= dt.timedelta(hours=24)
    listing = alice.get("/keys/").content.decode()
    assert "Expiring after rotation" in listing
    assert "valid until" in listing
    assert new_secret not in listing


def test_rotation_with_no_grace_ends_the_old_key_at_once(cast: Cast) -> None:
    old = key_of(cast.alice_org)
    post(client_for(cast.alice), f"/keys/{old.api_key.id}/rotate/", {"grace": "0"})
    with pytest.raises(identity.APIKeyError) as refused:
        identity.api_key_authenticate(secret=old.secret)
    assert refused.value.code == "api_key_expired"


def test_a_rotated_restricted_key_keeps_its_scopes(cast: Cast) -> None:
    old = key_of(cast.alice_org, scopes=[Scope.EVENTS_READ])
    page = post(
        client_for(cast.alice), f"/keys/{old.api_key.id}/rotate/", {"grace": "3600"}, follow=True
    )
    new_key = identity.api_key_authenticate(secret=shown_secret(page))
    assert new_key.restricted
    assert new_key.scopes == [Scope.EVENTS_READ]


@pytest.mark.parametrize("grace", ["", "60", "-1", "604801", "9" * 500, "one day"])
def test_a_grace_period_outside_the_choices_is_refused(cast: Cast, grace: str) -> None:
    old = key_of(cast.alice_org)
    page = post(client_for(cast.alice), f"/keys/{old.api_key.id}/rotate/", {"grace": grace})
    assert page.status_code == 200
    assert field_errors(page, "grace")
    assert APIKey.objects.count() == 1
    assert reread(old.api_key).replaced_by_id is None


def test_a_key_cannot_be_rotated_twice(cast: Cast) -> None:
    old = key_of(cast.alice_org)
    alice = client_for(cast.alice)
    post(alice, f"/keys/{old.api_key.id}/rotate/", {"grace": "3600"})
    again = post(alice, f"/keys/{old.api_key.id}/rotate/", {"grace": "3600"}, follow=True)
    assert "Only an active key can be rotated." in again.content.decode()
    assert APIKey.objects.count() == 2


def test_rotation_writes_an_audit_line_naming_both_keys(cast: Cast) -> None:
    old = key_of(cast.alice_org)
    page = post(
        client_for(cast.alice), f"/keys/{old.api_key.id}/rotate/", {"grace": "3600"}, follow=True
    )
    new_secret = shown_secret(page)
    entry = AuditEntry.objects.get(action="api_key.rotated")
    new_key = identity.api_key_authenticate(secret=new_secret)
    assert entry.target == old.api_key.id
    assert entry.detail["new_key_id"] == new_key.id
    assert entry.detail["grace_seconds"] == 3600
    assert new_secret not in json.dumps(entry.detail)
    assert old.secret not in json.dumps(entry.detail)


# Revoking -----------------------------------------------------------------------------


def test_revoking_asks_first_then_refuses_the_key_at_once(cast: Cast) -> None:
    issued = key_of(cast.alice_org)
    alice = client_for(cast.alice)
    confirm = alice.get(f"/keys/{issued.api_key.id}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke now" in confirm.content.decode()
    assert reread(issued.api_key).revoked_at is None

    done = post(alice, f"/keys/{issued.api_key.id}/revoke/")
    assert done.status_code == 302
    with pytest.raises(identity.APIKeyError) as refused:
        identity.api_key_authenticate(secret=issued.secret)
    assert refused.value.code == "invalid_api_key"
    assert "Revoked" in alice.get("/keys/").content.decode()


def test_revoking_a_key_in_its_grace_period_ends_it_too(cast: Cast) -> None:
    old = key_of(cast.alice_org)
    alice = client_for(cast.alice)
    post(alice, f"/keys/{old.api_key.id}/rotate/", {"grace": "604800"})
    post(alice, f"/keys/{old.api_key.id}/revoke/")
    with pytest.raises(identity.APIKeyError):
        identity.api_key_authenticate(secret=old.secret)


def test_revoking_writes_one_audit_line_and_a_second_revoke_changes_nothing(cast: Cast) -> None:
    issued = key_of(cast.alice_org)
    alice = client_for(cast.alice)
    post(alice, f"/keys/{issued.api_key.id}/revoke/")
    revoked_at = reread(issued.api_key).revoked_at
    again = post(alice, f"/keys/{issued.api_key.id}/revoke/", follow=True)
    assert "nothing to revoke" in again.content.decode()
    assert reread(issued.api_key).revoked_at == revoked_at
    entry = AuditEntry.objects.get(action="api_key.revoked")
    assert entry.target == issued.api_key.id
    assert entry.actor == "alice"
    assert issued.secret not in json.dumps(entry.detail)


# The page itself ----------------------------------------------------------------------


def test_the_nav_links_to_the_keys_page(cast: Cast) -> None:
    assert 'href="/keys/"' in client_for(cast.alice).get("/").content.decode()


def test_long_lists_are_paged(cast: Cast) -> None:
    for _ in range(51):
        key_of(cast.alice_org)
    alice = client_for(cast.alice)
    first = alice.get("/keys/").content.decode()
    assert first.count("sk_test_…") == 50
    assert "?page=2" in first
    assert alice.get("/keys/?page=2").content.decode().count("sk_test_…") == 1
