"""The team page, invitations by e-mail and the organization switcher.

alice owns Alice Ltd, bob is a viewer there, charlie owns Charlie Co."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, connections, transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from developers import team
from developers.context_processors import organizations
from developers.models import Invitation
from developers.portal import SESSION_ORGANIZATION, Seat
from oauth import services as identity
from oauth.models import AuditEntry, Membership, Organization, Role, User
from tests.factories import PASSWORD, add_member, make_organization, make_user
from tests.portal.conftest import Cast, client_for, csrf_token, post

Capture = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def sent(django_capture_on_commit_callbacks: Capture) -> Capture:
    """Invitation e-mails leave after the commit; `with sent(execute=True)` sends them."""
    return django_capture_on_commit_callbacks


def invite(client: Client, sent: Capture, email: str, role: str = "developer") -> Any:
    with sent(execute=True):
        return post(client, "/team/invite", {"email": email, "role": role})


def link_in(message: mail.EmailMessage) -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]+)", str(message.body))
    assert match, message.body
    return match.group(1)


def accept(client: Client, link: str, data: dict[str, str] | None = None) -> Any:
    """Submit the invitation page's form, with the CSRF token that page gave."""
    token = csrf_token(client, link)
    return client.post(link, {"csrfmiddlewaretoken": token, **(data or {})})


def membership(user: User, cast: Cast) -> Membership | None:
    return Membership.objects.filter(user=user, organization=cast.alice_org).first()


def audit_actions(organization_id: str) -> list[str]:
    return list(
        AuditEntry.objects.filter(organization_id=organization_id)
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )


def state() -> tuple[list[tuple[int, str, str]], list[tuple[str, str, Any, Any]], int]:
    """Everything the team pages can change, to prove a refused request changed nothing."""
    members = list(Membership.objects.order_by("id").values_list("id", "organization_id", "role"))
    invitations = list(
        Invitation.objects.order_by("id").values_list(
            "id", "token_digest", "revoked_at", "expires_at"
        )
    )
    return members, invitations, AuditEntry.objects.count()


@pytest.fixture
def pending(cast: Cast, sent: Capture) -> Invitation:
    """An invitation alice sent to dana, who has no account yet."""
    invite(client_for(cast.alice), sent, "dana@example.test")
    return Invitation.objects.get(email="dana@example.test")


def seat_of(user: User, cast: Cast) -> Seat:
    member = Membership.objects.get(user=user, organization=cast.alice_org)
    return Seat(user=user, organization=cast.alice_org, role=Role(member.role))


# The page -----------------------------------------------------------------------------


def test_the_owner_sees_members_and_pending_invitations(cast: Cast, pending: Invitation) -> None:
    page = client_for(cast.alice).get("/team/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "alice@example.test" in body
    assert "bob@example.test" in body
    assert "dana@example.test" in body
    assert "charlie@example.test" not in body
    assert 'action="/team/invite"' in body
    assert '<label for="id_email">' in body
    assert f"/team/invitations/{pending.id}/revoke" in body


def test_a_viewer_sees_the_team_but_no_controls(cast: Cast, pending: Invitation) -> None:
    page = client_for(cast.bob).get("/team/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "alice@example.test" in body
    assert "dana@example.test" in body
    assert "/team/invite" not in body
    assert "/revoke" not in body
    assert "/remove" not in body


def test_an_anonymous_visitor_is_sent_to_log_in(cast: Cast) -> None:
    for response in (
        Client().get("/team/"),
        Client().post("/team/invite", {"email": "x@example.test", "role": "viewer"}),
        Client().post("/organization/switch", {"organization_id": cast.alice_org.id}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    assert not Invitation.objects.exists()


def test_a_viewer_can_change_nothing(cast: Cast, pending: Invitation) -> None:
    bob = client_for(cast.bob)
    alice_seat = Membership.objects.get(user=cast.alice, organization=cast.alice_org)
    before = state()
    for url, data in [
        ("/team/invite", {"email": "eve@example.test", "role": "viewer"}),
        (f"/team/members/{alice_seat.pk}/role", {"role": "viewer"}),
        (f"/team/members/{alice_seat.pk}/remove", {}),
        (f"/team/invitations/{pending.id}/resend", {}),
        (f"/team/invitations/{pending.id}/revoke", {}),
        ("/team/", {}),
    ]:
        assert post(bob, url, data).status_code == 403, url
    assert state() == before
    assert len(mail.outbox) == 1  # only alice's invitation to dana


def test_another_organization_gets_404_for_alices_members_and_invitations(
    cast: Cast, pending: Invitation
) -> None:
    charlie = client_for(cast.charlie)
    bob_seat = Membership.objects.get(user=cast.bob, organization=cast.alice_org)
    before = state()
    for url, data in [
        (f"/team/members/{bob_seat.pk}/role", {"role": "admin"}),
        (f"/team/members/{bob_seat.pk}/remove", {}),
        (f"/team/invitations/{pending.id}/resend", {}),
        (f"/team/invitations/{pending.id}/revoke", {}),
        ("/organization/switch", {"organization_id": cast.alice_org.id}),
    ]:
        assert post(charlie, url, data).status_code == 404, url
    assert state() == before
    assert "bob@example.test" not in charlie.get("/team/").content.decode()


def test_someone_with_no_organization_gets_404(db: None) -> None:
    assert client_for(make_user("loner")).get("/team/").status_code == 404


def test_a_post_without_the_csrf_token_is_refused(cast: Cast, pending: Invitation) -> None:
    alice = client_for(cast.alice)
    before = state()
    bob_seat = Membership.objects.get(user=cast.bob, organization=cast.alice_org)
    for url, data in [
        ("/team/invite", {"email": "eve@example.test", "role": "viewer"}),
        (f"/team/members/{bob_seat.pk}/role", {"role": "admin"}),
        (f"/team/members/{bob_seat.pk}/remove", {}),
        (f"/team/invitations/{pending.id}/revoke", {}),
        ("/organization/switch", {"organization_id": cast.alice_org.id}),
    ]:
        assert alice.post(url, data).status_code == 403, url
    assert state() == before


# Inviting -----------------------------------------------------------------------------


def test_an_invitation_is_emailed_with_a_link_and_audited(cast: Cast, sent: Capture) -> None:
    response = invite(client_for(cast.alice), sent, "Dana@Example.test", "admin")
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "dana@example.test"
    assert invitation.role == Role.ADMIN
    assert invitation.invited_by == cast.alice
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=7)
    [message] = mail.outbox
    assert message.to == ["dana@example.test"]
    assert "Alice Ltd" in message.subject
    assert link_in(message).startswith("/invitations/")
    entry = AuditEntry.objects.get(action="member.invited")
    assert entry.target == invitation.id
    assert entry.actor == "alice"
    assert entry.detail == {"email": "dana@example.test", "role": "admin"}


def test_only_a_digest_of_the_token_is_stored(cast: Cast, pending: Invitation) -> None:
    token = link_in(mail.outbox[0]).rsplit("/", 1)[1]
    assert len(token) >= 40
    assert pending.token_digest == hashlib.sha256(token.encode()).hexdigest()
    stored = Invitation.objects.filter(pk=pending.pk).values().get()
    assert not any(token in str(value) for value in stored.values())
    assert not any(token in str(entry.detail) for entry in AuditEntry.objects.all())


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "", "role": "viewer"}, "email"),
        ({"email": "not-an-address", "role": "viewer"}, "email"),
        ({"email": "x" * 300 + "@example.test", "role": "viewer"}, "email"),
        ({"email": "eve@example.test", "role": ""}, "role"),
        ({"email": "eve@example.test", "role": "god"}, "role"),
        ({"email": "eve@example.test", "role": "OWNER"}, "role"),
        ({"email": "bob@example.test", "role": "viewer"}, "email"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_changes_nothing(
    cast: Cast, sent: Capture, data: dict[str, Any], field: str
) -> None:
    before = state()
    response = invite(client_for(cast.alice), sent, **data)
    body = response.content.decode()
    assert response.status_code == 200
    # The error list sits between the field's label and its input.
    assert re.search(
        rf'<label for="id_{field}">.*?</label>\s*<ul class="errorlist[^"]*"[^>]*>.*?</ul>\s*'
        rf'<(input|select)[^>]*name="{field}"',
        body,
        re.S,
    ), body
    assert state() == before
    assert mail.outbox == []


def test_a_second_open_invitation_to_the_same_address_is_refused(
    cast: Cast, sent: Capture, pending: Invitation
) -> None:
    response = invite(client_for(cast.alice), sent, "DANA@example.test", "viewer")
    assert response.status_code == 200
    assert "already has a pending invitation" in response.content.decode()
    assert Invitation.objects.count() == 1


def test_the_database_allows_one_open_invitation_per_address(
    cast: Cast, pending: Invitation
) -> None:
    duplicate = Invitation(
        organization=cast.alice_org,
        email="DANA@EXAMPLE.TEST",
        role=Role.VIEWER,
        token_digest="0" * 64,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    pending.revoked_at = timezone.now()
    pending.save()
    duplicate.save()  # once the first is closed, a new one may be sent


def test_an_expired_invitation_is_replaced_by_a_new_one(
    cast: Cast, sent: Capture, pending: Invitation
) -> None:
    Invitation.objects.filter(pk=pending.pk).update(expires_at=timezone.now())
    assert invite(client_for(cast.alice), sent, "dana@example.test").status_code == 302
    pending.refresh_from_db()
    assert pending.revoked_at is not None
    assert Invitation.objects.filter(revoked_at=None).count() == 1


def test_resending_sends_a_new_link_and_the_old_one_dies(
    cast: Cast, sent: Capture, pending: Invitation
) -> None:
    old_link = link_in(mail.outbox[0])
    with sent(execute=True):
        response = post(client_for(cast.alice), f"/team/invitations/{pending.id}/resend")
    assert response.status_code == 302
    new_link = link_in(mail.outbox[1])
    assert new_link != old_link
    assert Client().get(old_link).status_code == 400
    assert Client().get(new_link).status_code == 200
    assert "invitation.resent" in audit_actions(cast.alice_org.id)


def test_a_revoked_invitation_link_is_refused(cast: Cast, pending: Invitation) -> None:
    link = link_in(mail.outbox[0])
    assert post(client_for(cast.alice), f"/team/invitations/{pending.id}/revoke").status_code == 302
    pending.refresh_from_db()
    assert pending.revoked_at is not None
    page = Client().get(link)
    assert page.status_code == 400
    assert "revoked" in page.content.decode()
    assert "invitation.revoked" in audit_actions(cast.alice_org.id)


# Accepting ----------------------------------------------------------------------------


def test_a_signed_in_invitee_accepts_once(cast: Cast, pending: Invitation) -> None:
    dana = make_user("dana")
    browser = client_for(dana)
    link = link_in(mail.outbox[0])
    page = browser.get(link)
    assert page.status_code == 200
    assert "Alice Ltd" in page.content.decode()
    assert membership(dana, cast) is None  # opening the link alone changes nothing

    response = accept(browser, link)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert membership(dana, cast) is not None
    assert membership(dana, cast).role == Role.DEVELOPER  # type: ignore[union-attr]
    assert browser.session[SESSION_ORGANIZATION] == cast.alice_org.id
    pending.refresh_from_db()
    assert pending.accepted_at is not None
    assert pending.accepted_by == dana
    entry = AuditEntry.objects.get(action="invitation.accepted")
    assert (entry.actor, entry.target) == ("dana", pending.id)

    assert browser.get(link).status_code == 400
    assert accept(browser, link).status_code == 400
    assert Membership.objects.filter(user=dana).count() == 1


def test_the_email_matches_whatever_its_case(cast: Cast, sent: Capture) -> None:
    dana = make_user("dana")
    invite(client_for(cast.alice), sent, "DANA@example.TEST", "viewer")
    assert accept(client_for(dana), link_in(mail.outbox[0])).status_code == 302
    assert membership(dana, cast).role == Role.VIEWER  # type: ignore[union-attr]


def test_someone_else_signed_in_is_refused(cast: Cast, pending: Invitation) -> None:
    link = link_in(mail.outbox[0])
    charlie = client_for(cast.charlie)
    assert charlie.get(link).status_code == 403
    assert accept(charlie, link).status_code == 403
    assert membership(cast.charlie, cast) is None
    pending.refresh_from_db()
    assert pending.accepted_at is None


def test_an_expired_link_is_refused(cast: Cast, pending: Invitation) -> None:
    dana = make_user("dana")
    link = link_in(mail.outbox[0])
    Invitation.objects.filter(pk=pending.pk).update(expires_at=timezone.now() - dt.timedelta(1))
    page = client_for(dana).get(link)
    assert page.status_code == 400
    assert "expired" in page.content.decode()
    assert accept(client_for(dana), link).status_code == 400
    assert membership(dana, cast) is None


def test_a_made_up_link_is_refused(db: None) -> None:
    page = Client().get("/invitations/not-a-real-token")
    assert page.status_code == 400
    assert "not a valid invitation link" in page.content.decode()


def test_a_member_already_is_told_and_nothing_changes(cast: Cast, pending: Invitation) -> None:
    dana = make_user("dana")
    add_member(cast.alice_org, dana, Role.VIEWER)
    browser = client_for(dana)
    page = browser.get(link_in(mail.outbox[0]))
    assert page.status_code == 200
    assert "already a member" in page.content.decode()
    accept(browser, link_in(mail.outbox[0]))
    assert membership(dana, cast).role == Role.VIEWER  # type: ignore[union-attr]
    pending.refresh_from_db()
    assert pending.accepted_at is None


def test_a_visitor_signed_out_is_offered_log_in_or_a_new_account(
    cast: Cast, pending: Invitation
) -> None:
    link = link_in(mail.outbox[0])
    page = Client().get(link)
    body = page.content.decode()
    assert page.status_code == 200
    assert f'href="/login/?next={link}"' in body
    assert '<label for="id_username">' in body
    assert '<label for="id_password">' in body


def test_logging_in_brings_the_invitee_back_to_accept(cast: Cast, pending: Invitation) -> None:
    dana = make_user("dana")
    link = link_in(mail.outbox[0])
    browser = Client()
    page = browser.get(link)
    assert "New here?" not in page.content.decode()  # an account exists: log in instead
    logged_in = browser.post(
        f"/login/?next={link}",
        {"username": "dana", "password": PASSWORD, "next": link},
        REMOTE_ADDR="127.0.0.1",
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == link
    assert accept(browser, link).status_code == 302
    assert membership(dana, cast) is not None


def test_a_new_account_is_created_signed_in_and_joined(cast: Cast, pending: Invitation) -> None:
    link = link_in(mail.outbox[0])
    browser = Client(enforce_csrf_checks=True)
    response = accept(browser, link, {"username": "dana", "password": "violet-harbor-1492"})
    assert response.status_code == 302
    dana = User.objects.get(username="dana")
    assert dana.email == "dana@example.test"
    assert dana.is_active
    assert membership(dana, cast).role == Role.DEVELOPER  # type: ignore[union-attr]
    assert browser.get("/team/").status_code == 200  # signed in, in Alice Ltd
    assert "invitation.accepted" in audit_actions(cast.alice_org.id)
    assert Client().get(link).status_code == 400


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"username": "", "password": "violet-harbor-1492"}, "username"),
        ({"username": "alice", "password": "violet-harbor-1492"}, "username"),
        ({"username": "d" * 151, "password": "violet-harbor-1492"}, "username"),
        ({"username": "bad name!", "password": "violet-harbor-1492"}, "username"),
        ({"username": "dana", "password": ""}, "password"),
        ({"username": "dana", "password": "short"}, "password"),
        ({"username": "dana", "password": "password123"}, "password"),
    ],
)
def test_a_bad_new_account_shows_the_error_by_its_field_and_creates_nothing(
    cast: Cast, pending: Invitation, data: dict[str, str], field: str
) -> None:
    users = User.objects.count()
    response = accept(Client(enforce_csrf_checks=True), link_in(mail.outbox[0]), data)
    body = response.content.decode()
    assert response.status_code == 200
    assert re.search(
        rf'<label for="id_{field}">.*?</label>\s*<ul class="errorlist[^"]*"[^>]*>.*?</ul>\s*'
        rf'<input[^>]*name="{field}"',
        body,
        re.S,
    ), body
    assert User.objects.count() == users
    pending.refresh_from_db()
    assert pending.accepted_at is None


def test_an_owner_invitation_makes_an_owner(cast: Cast, sent: Capture) -> None:
    invite(client_for(cast.alice), sent, "dana@example.test", "owner")
    joined = accept(
        Client(enforce_csrf_checks=True),
        link_in(mail.outbox[0]),
        {"username": "dana", "password": "violet-harbor-1492"},
    )
    assert joined.status_code == 302
    dana = User.objects.get(username="dana")
    assert membership(dana, cast).role == Role.OWNER  # type: ignore[union-attr]


# Roles --------------------------------------------------------------------------------


@pytest.fixture
def dave(cast: Cast) -> User:
    """An admin of Alice Ltd."""
    dave = make_user("dave")
    add_member(cast.alice_org, dave, Role.ADMIN)
    return dave


def test_an_owner_changes_a_role_and_it_is_audited(cast: Cast) -> None:
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    response = post(client_for(cast.alice), f"/team/members/{bob_seat.pk}/role", {"role": "admin"})
    assert response.status_code == 302
    assert membership(cast.bob, cast).role == Role.ADMIN  # type: ignore[union-attr]
    entry = AuditEntry.objects.get(action="member.role_changed")
    assert entry.target == str(cast.bob.pk)
    assert entry.detail == {"user": "bob", "from": "viewer", "to": "admin"}


def test_an_admin_invites_and_changes_roles_below_owner(
    cast: Cast, sent: Capture, dave: User
) -> None:
    admin = client_for(dave)
    assert invite(admin, sent, "eve@example.test", "admin").status_code == 302
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    assert (
        post(admin, f"/team/members/{bob_seat.pk}/role", {"role": "developer"}).status_code == 302
    )
    assert membership(cast.bob, cast).role == Role.DEVELOPER  # type: ignore[union-attr]


def test_an_admin_cannot_make_anyone_owner(cast: Cast, sent: Capture, dave: User) -> None:
    admin = client_for(dave)
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    before = state()
    assert 'value="owner"' not in admin.get("/team/").content.decode()
    refused_invite = invite(admin, sent, "eve@example.test", "owner")
    assert "errorlist" in refused_invite.content.decode()
    refused_role = post(admin, f"/team/members/{bob_seat.pk}/role", {"role": "owner"})
    assert "errorlist" in refused_role.content.decode()
    own_seat = membership(dave, cast)
    assert own_seat is not None
    post(admin, f"/team/members/{own_seat.pk}/role", {"role": "owner"})
    assert state() == before
    assert mail.outbox == []


def test_an_admin_cannot_demote_or_remove_an_owner(cast: Cast, dave: User) -> None:
    admin = client_for(dave)
    alice_seat = membership(cast.alice, cast)
    assert alice_seat is not None
    before = state()
    post(admin, f"/team/members/{alice_seat.pk}/role", {"role": "viewer"})
    post(admin, f"/team/members/{alice_seat.pk}/remove")
    assert state() == before
    assert membership(cast.alice, cast).role == Role.OWNER  # type: ignore[union-attr]


def test_the_services_refuse_an_admin_granting_owner(cast: Cast, dave: User) -> None:
    request = RequestFactory().post("/")
    seat = seat_of(dave, cast)
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    with pytest.raises(team.TeamError, match="Only an owner"):
        team.invitation_create(
            request=request, seat=seat, email="eve@example.test", role=Role.OWNER
        )
    with pytest.raises(team.TeamError, match="Only an owner"):
        team.member_role_change(request=request, seat=seat, membership=bob_seat, role=Role.OWNER)
    with pytest.raises(team.TeamError, match="Only an owner or admin"):
        team.member_remove(request=request, seat=seat_of(cast.bob, cast), membership=bob_seat)
    assert not Invitation.objects.exists()
    assert membership(cast.bob, cast).role == Role.VIEWER  # type: ignore[union-attr]


def test_the_last_owner_cannot_be_demoted_or_removed(cast: Cast) -> None:
    alice = client_for(cast.alice)
    alice_seat = membership(cast.alice, cast)
    assert alice_seat is not None
    before = state()
    demoted = post(alice, f"/team/members/{alice_seat.pk}/role", {"role": "admin"})
    assert demoted.status_code == 200
    assert "needs an owner" in demoted.content.decode()
    removed = post(alice, f"/team/members/{alice_seat.pk}/remove", follow=True)
    assert "needs an owner" in removed.content.decode()
    assert state() == before
    with pytest.raises(team.TeamError):
        team.member_remove(
            request=RequestFactory().post("/"),
            seat=seat_of(cast.alice, cast),
            membership=alice_seat,
        )
    assert membership(cast.alice, cast).role == Role.OWNER  # type: ignore[union-attr]


def test_with_a_second_owner_the_first_may_step_down(cast: Cast) -> None:
    add_member(cast.alice_org, cast.bob, Role.OWNER)
    alice_seat = membership(cast.alice, cast)
    assert alice_seat is not None
    response = post(
        client_for(cast.alice), f"/team/members/{alice_seat.pk}/role", {"role": "admin"}
    )
    assert response.status_code == 302
    assert membership(cast.alice, cast).role == Role.ADMIN  # type: ignore[union-attr]
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    refused = post(client_for(cast.bob), f"/team/members/{bob_seat.pk}/remove", follow=True)
    assert "needs an owner" in refused.content.decode()


def demote_both_at_once(organization: Organization, owners: list[User]) -> list[str]:
    """Each owner demotes themselves in their own thread, released together."""
    barrier = threading.Barrier(len(owners))

    def demote(user: User) -> str:
        try:
            barrier.wait()
            identity.membership_role_change(organization=organization, user=user, role=Role.ADMIN)
            return "demoted"
        except identity.LastOwnerError:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(owners)) as pool:
        return sorted(pool.map(demote, owners))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_owners_stepping_down_at_once_leave_one_owner() -> None:
    for _ in range(3):
        first, second = make_user(), make_user()
        organization = make_organization("Race Ltd", owner=first)
        add_member(organization, second, Role.OWNER)
        assert demote_both_at_once(organization, [first, second]) == ["demoted", "refused"]
        owners = Membership.objects.filter(organization=organization, role=Role.OWNER)
        assert owners.count() == 1


def test_a_removed_member_loses_access_at_once(cast: Cast) -> None:
    bob = client_for(cast.bob)
    assert bob.get("/team/").status_code == 200
    bob_seat = membership(cast.bob, cast)
    assert bob_seat is not None
    assert post(client_for(cast.alice), f"/team/members/{bob_seat.pk}/remove").status_code == 302
    assert membership(cast.bob, cast) is None
    assert bob.get("/team/").status_code == 404
    entry = AuditEntry.objects.get(action="member.removed")
    assert entry.detail == {"user": "bob", "role": "viewer"}


def test_a_demoted_admin_loses_the_controls_at_once(cast: Cast, dave: User) -> None:
    admin = client_for(dave)
    dave_seat = membership(dave, cast)
    assert dave_seat is not None
    post(client_for(cast.alice), f"/team/members/{dave_seat.pk}/role", {"role": "viewer"})
    assert (
        post(admin, "/team/invite", {"email": "e@example.test", "role": "viewer"}).status_code
        == 403
    )


# Switching organizations --------------------------------------------------------------


def test_a_member_of_two_organizations_switches_between_them(cast: Cast) -> None:
    add_member(cast.charlie_org, cast.alice, Role.VIEWER)
    alice = client_for(cast.alice)
    page = alice.get("/team/").content.decode()
    assert '<label for="organization-switch"' in page
    assert f'<option value="{cast.alice_org.id}" selected>' in page
    assert f'<option value="{cast.charlie_org.id}" >' in page
    assert "bob@example.test" in page

    response = post(alice, "/organization/switch", {"organization_id": cast.charlie_org.id})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert alice.session[SESSION_ORGANIZATION] == cast.charlie_org.id
    page = alice.get("/team/").content.decode()
    assert "charlie@example.test" in page
    assert "bob@example.test" not in page
    assert "/team/invite" not in page  # a viewer in Charlie Co
    # Pages outside the organization (here, the user's own authorized apps) say so too.
    selected = re.findall(
        r'<option value="(org_\w+)" selected>', alice.get("/authorized-apps/").content.decode()
    )
    assert selected == [cast.charlie_org.id]


def test_one_organization_shows_no_switcher(cast: Cast) -> None:
    assert "organization-switch" not in client_for(cast.alice).get("/team/").content.decode()


@pytest.mark.parametrize("organization_id", ["org_nope", "", "x" * 500])
def test_switching_to_an_organization_you_are_not_in_is_404(
    cast: Cast, organization_id: str
) -> None:
    bob = client_for(cast.bob)
    assert (
        post(bob, "/organization/switch", {"organization_id": organization_id}).status_code == 404
    )
    assert (
        post(bob, "/organization/switch", {"organization_id": cast.charlie_org.id}).status_code
        == 404
    )
    assert SESSION_ORGANIZATION not in bob.session


def test_the_switcher_costs_one_query_and_none_when_unused(
    cast: Cast, django_assert_num_queries: Capture
) -> None:
    request = RequestFactory().get("/")
    request.user = cast.alice
    with django_assert_num_queries(0):
        context = organizations(request)
    with django_assert_num_queries(1):
        names = [m.organization.name for m in context["portal_memberships"]]  # type: ignore[attr-defined]
    assert names == ["Alice Ltd"]
