"""The team page (members, invitations, roles), the page an invitation link opens, and
the switch between the organizations a person belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from developers import team
from developers.forms.team import (
    InvitationForm,
    InvitationSignupForm,
    MemberRoleForm,
    OrganizationSwitchForm,
)
from developers.models import Invitation
from developers.portal import SESSION_ORGANIZATION, Seat, member_view
from oauth import selectors as identity_read
from oauth.models import Membership, Role, User

# The account created on the invitation page signs in without the lockout backend: the
# link has just proved who they are.
SIGNUP_BACKEND = "django.contrib.auth.backends.ModelBackend"


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    # None when this seat may not change this member (a viewer, or an admin facing an owner).
    form: MemberRoleForm | None
    removable: bool


def _member_rows(seat: Seat, failed: tuple[int, MemberRoleForm] | None = None) -> list[MemberRow]:
    roles = team.grantable_roles(seat=seat)
    rows = []
    for membership in identity_read.organization_memberships(organization=seat.organization):
        manageable = seat.can(Role.ADMIN) and (
            membership.role != Role.OWNER or seat.role == Role.OWNER
        )
        form = None
        if failed is not None and failed[0] == membership.pk:
            form = failed[1]
        elif manageable:
            form = MemberRoleForm(
                roles=roles,
                initial={"role": membership.role},
                auto_id=f"id_member{membership.pk}_%s",
            )
        rows.append(MemberRow(membership=membership, form=form, removable=manageable))
    return rows


def _team_page(
    request: HttpRequest,
    seat: Seat,
    *,
    invite_form: InvitationForm | None = None,
    failed: tuple[int, MemberRoleForm] | None = None,
) -> HttpResponse:
    manages = seat.can(Role.ADMIN)
    if invite_form is None and manages:
        invite_form = InvitationForm(roles=team.grantable_roles(seat=seat))
    return render(
        request,
        "developers/team/team.html",
        {
            "seat": seat,
            "manages": manages,
            "members": _member_rows(seat, failed),
            "invitations": team.organization_pending_invitations(seat=seat),
            "invite_form": invite_form,
        },
    )


def _membership(seat: Seat, membership_id: int) -> Membership:
    members = identity_read.organization_memberships(organization=seat.organization)
    membership = members.filter(pk=membership_id).first()
    if membership is None:
        raise Http404
    return membership


def _invitation(seat: Seat, invitation_id: str) -> Invitation:
    invitation = team.organization_pending_invitations(seat=seat).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404
    return invitation


@member_view(Role.VIEWER, write_role=Role.ADMIN)
@require_safe
def team_page(request: HttpRequest, seat: Seat) -> HttpResponse:
    return _team_page(request, seat)


@member_view(Role.ADMIN)
@require_POST
def invite(request: HttpRequest, seat: Seat) -> HttpResponse:
    form = InvitationForm(request.POST, roles=team.grantable_roles(seat=seat))
    if not form.is_valid():
        return _team_page(request, seat, invite_form=form)
    try:
        invitation = team.invitation_create(
            request=request,
            seat=seat,
            email=form.cleaned_data["email"],
            role=Role(form.cleaned_data["role"]),
        )
    except team.TeamError as error:
        form.add_error(error.field, error.message)
        return _team_page(request, seat, invite_form=form)
    messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    return redirect("team")


@member_view(Role.ADMIN)
@require_POST
def invitation_resend(request: HttpRequest, seat: Seat, invitation_id: str) -> HttpResponse:
    invitation = _invitation(seat, invitation_id)
    try:
        team.invitation_resend(request=request, seat=seat, invitation=invitation)
    except team.TeamError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("A new link was sent to %(email)s.") % {"email": invitation.email}
        )
    return redirect("team")


@member_view(Role.ADMIN)
@require_POST
def invitation_revoke(request: HttpRequest, seat: Seat, invitation_id: str) -> HttpResponse:
    invitation = _invitation(seat, invitation_id)
    try:
        team.invitation_revoke(request=request, seat=seat, invitation=invitation)
    except team.TeamError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("The invitation to %(email)s was revoked.") % {"email": invitation.email}
        )
    return redirect("team")


@member_view(Role.ADMIN)
@require_POST
def member_role(request: HttpRequest, seat: Seat, membership_id: int) -> HttpResponse:
    membership = _membership(seat, membership_id)
    form = MemberRoleForm(
        request.POST, roles=team.grantable_roles(seat=seat), auto_id=f"id_member{membership.pk}_%s"
    )
    if not form.is_valid():
        return _team_page(request, seat, failed=(membership.pk, form))
    try:
        team.member_role_change(
            request=request, seat=seat, membership=membership, role=Role(form.cleaned_data["role"])
        )
    except team.TeamError as error:
        form.add_error("role", error.message)
        return _team_page(request, seat, failed=(membership.pk, form))
    messages.success(
        request,
        _("%(user)s is now %(role)s.")
        % {"user": membership.user.get_username(), "role": Role(form.cleaned_data["role"]).label},
    )
    return redirect("team")


@member_view(Role.ADMIN)
@require_POST
def member_remove(request: HttpRequest, seat: Seat, membership_id: int) -> HttpResponse:
    membership = _membership(seat, membership_id)
    try:
        team.member_remove(request=request, seat=seat, membership=membership)
    except team.TeamError as error:
        messages.error(request, error.message)
        return redirect("team")
    messages.success(
        request,
        _("%(user)s was removed from the team.") % {"user": membership.user.get_username()},
    )
    if membership.user_id == seat.user.pk:
        return redirect("home")
    return redirect("team")


@require_http_methods(["GET", "HEAD", "POST"])
def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    """Where an invitation link lands: a signed-in invitee accepts; someone signed out
    logs in (and comes back here) or creates an account for the invited address."""
    invitation = team.invitation_by_token(token=token)
    problem = team.invitation_problem(invitation=invitation)
    if invitation is None or problem is not None:
        return _invitation_refused(request, problem or "invalid")
    user = request.user
    if isinstance(user, User):
        return _invitation_for_user(request, invitation, user)
    return _invitation_for_visitor(request, invitation)


def _invitation_for_user(request: HttpRequest, invitation: Invitation, user: User) -> HttpResponse:
    if team.is_member(organization_id=invitation.organization_id, user=user):
        return _invitation_refused(request, "already_member")
    if user.email.strip().lower() != invitation.email.lower():
        return _invitation_refused(request, "wrong_user")
    if request.method != "POST":
        return render(
            request, "registration/invitation.html", {"invitation": invitation, "user": user}
        )
    try:
        team.invitation_accept(request=request, invitation=invitation, user=user)
    except team.InvitationError as error:
        return _invitation_refused(request, error.reason)
    return _joined(request, invitation)


def _invitation_for_visitor(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    has_account = identity_read.user_by_email(email=invitation.email) is not None
    form = InvitationSignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and not has_account and form.is_valid():
        try:
            user = team.invitation_signup(
                request=request,
                invitation=invitation,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
            )
        except team.InvitationError as error:
            return _invitation_refused(request, error.reason)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            login(request, user, backend=SIGNUP_BACKEND)
            return _joined(request, invitation)
    return render(
        request,
        "registration/invitation.html",
        {
            "invitation": invitation,
            "form": None if has_account else form,
            "login_next": request.path,
        },
    )


def _joined(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    # Open the portal in the organization just joined rather than the user's first one.
    request.session[SESSION_ORGANIZATION] = invitation.organization_id
    messages.success(
        request,
        _("Welcome to %(organization)s.") % {"organization": invitation.organization.name},
    )
    return redirect("home")


def _invitation_refused(request: HttpRequest, reason: str) -> HttpResponse:
    if reason == "already_member":
        status = 200
    elif reason == "wrong_user":
        status = 403
    else:
        status = 400
    return render(
        request, "registration/invitation_invalid.html", {"reason": reason}, status=status
    )


@member_view()
@require_POST
def organization_switch(request: HttpRequest, seat: Seat) -> HttpResponse:
    """Look at another organization the user belongs to; any other id is a 404."""
    form = OrganizationSwitchForm(request.POST)
    if not form.is_valid():
        raise Http404
    organization_id = form.cleaned_data["organization_id"]
    if not team.is_member(organization_id=organization_id, user=seat.user):
        raise Http404
    request.session[SESSION_ORGANIZATION] = organization_id
    return redirect("home")


urlpatterns = [
    path("team/", team_page, name="team"),
    path("team/invite", invite, name="team-invite"),
    path(
        "team/invitations/<str:invitation_id>/resend",
        invitation_resend,
        name="team-invitation-resend",
    ),
    path(
        "team/invitations/<str:invitation_id>/revoke",
        invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("team/members/<int:membership_id>/role", member_role, name="team-member-role"),
    path("team/members/<int:membership_id>/remove", member_remove, name="team-member-remove"),
    path("invitations/<str:token>", invitation_page, name="invitation-accept"),
    path("organization/switch", organization_switch, name="organization-switch"),
]
