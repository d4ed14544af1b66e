"""An organization's team: invitations by e-mail, roles and removals.

Who may do what: admins and owners manage the team, but only an owner may grant or take
away the owner role, and the last owner can never be demoted or removed (identity
enforces that last rule under a row lock). Every change writes its audit line in the same
transaction, and invitation e-mails go out only once that transaction has committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from developers.models import Invitation
from developers.portal import Seat, audit
from oauth import selectors as identity_read
from oauth import services as identity
from oauth.models import Membership, Role, User

logger = logging.getLogger(__name__)

INVITATION_LIFETIME = dt.timedelta(days=7)


class TeamError(ValueError):
    """A team change that the rules refuse; `field` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvitationError(ValueError):
    """Why an invitation cannot be accepted: `invalid`, `expired`, `revoked`, `used`,
    `wrong_user` or `already_member`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Reads ------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_by_token(*, token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_digest=token_digest(token))
        .first()
    )


def is_member(*, organization_id: str, user: User) -> bool:
    memberships = identity_read.user_memberships(user=user)
    return memberships.filter(organization_id=organization_id).exists()


def invitation_problem(*, invitation: Invitation | None) -> str | None:
    """Why this invitation's link no longer works, or None while it does."""
    if invitation is None:
        return "invalid"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.accepted_at is not None:
        return "used"
    if invitation.is_expired:
        return "expired"
    return None


def organization_pending_invitations(*, seat: Seat) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked, expired ones included so they can be
    resent."""
    return (
        Invitation.objects.filter(organization=seat.organization, accepted_at=None, revoked_at=None)
        .select_related("invited_by")
        .order_by("created_at", "id")
    )


def grantable_roles(*, seat: Seat) -> list[Role]:
    """The roles this seat may hand out, highest first."""
    if seat.role == Role.OWNER:
        return [Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER]
    if seat.role == Role.ADMIN:
        return [Role.ADMIN, Role.DEVELOPER, Role.VIEWER]
    return []


# Rules ------------------------------------------------------------------------------


def _require_admin(seat: Seat) -> None:
    if not seat.can(Role.ADMIN):
        raise TeamError(_("Only an owner or admin can manage the team."))


def _require_owner_for(seat: Seat, *roles: str) -> None:
    if Role.OWNER in roles and seat.role != Role.OWNER:
        raise TeamError(_("Only an owner can grant or take away the owner role."), "role")


def _require_own_organization(seat: Seat, organization_id: str) -> None:
    # The views look objects up within the seat's organization; this is the second lock.
    if organization_id != seat.organization.id:
        raise TeamError(_("Not found."))


# Invitations ------------------------------------------------------------------------


def _issue_token(invitation: Invitation, now: dt.datetime) -> str:
    """A new link for the invitation, valid from `now`; returns the token to e-mail."""
    token = secrets.token_urlsafe(32)
    invitation.token_digest = token_digest(token)
    invitation.expires_at = now + INVITATION_LIFETIME
    return token


def _send_after_commit(invitation: Invitation, token: str, inviter: User) -> None:
    link = settings.PUBLIC_BASE_URL + reverse("invitation-accept", args=[token])
    context = {
        "organization": invitation.organization.name,
        "inviter": inviter.get_full_name() or inviter.get_username(),
        "role": Role(invitation.role).label,
        "link": link,
        "days": INVITATION_LIFETIME.days,
    }
    subject = render_to_string("registration/invitation_email_subject.txt", context).strip()
    body = render_to_string("registration/invitation_email.txt", context)

    def send() -> None:
        try:
            send_mail(subject, body, None, [invitation.email])
        except Exception:
            # The invitation stands and can be resent; the link itself is never logged.
            logger.exception("invitation e-mail %s could not be sent", invitation.id)

    transaction.on_commit(send)


def invitation_create(*, request: HttpRequest, seat: Seat, email: str, role: Role) -> Invitation:
    """Invites `email` to the seat's organization with `role` and e-mails the link."""
    _require_admin(seat)
    _require_owner_for(seat, role)
    email = email.strip().lower()
    members = identity_read.organization_memberships(organization=seat.organization)
    if members.filter(user__email__iexact=email).exists():
        raise TeamError(_("This person is already a member."), "email")
    with transaction.atomic():
        earlier = (
            Invitation.objects.select_for_update()
            .filter(organization=seat.organization, email__iexact=email)
            .filter(accepted_at=None, revoked_at=None)
            .first()
        )
        if earlier is not None:
            if not earlier.is_expired:
                raise TeamError(_("This address already has a pending invitation."), "email")
            # An expired invitation still counts as open for the one-open-invitation
            # constraint; a new one supersedes it.
            earlier.revoked_at = timezone.now()
            earlier.save(update_fields=["revoked_at"])
        now = timezone.now()
        invitation = Invitation(
            organization=seat.organization,
            email=email,
            role=role,
            invited_by=seat.user,
            created_at=now,
        )
        token = _issue_token(invitation, now)
        try:
            with transaction.atomic():
                invitation.save(force_insert=True)
        except IntegrityError:
            # Another admin invited the same address a moment ago.
            raise TeamError(_("This address already has a pending invitation."), "email") from None
        audit(request, seat, "member.invited", target=invitation.id, detail=_detail(invitation))
        _send_after_commit(invitation, token, seat.user)
    return invitation


def invitation_resend(*, request: HttpRequest, seat: Seat, invitation: Invitation) -> Invitation:
    """A fresh link valid for another seven days; the previous link stops working."""
    _require_admin(seat)
    _require_own_organization(seat, invitation.organization_id)
    _require_owner_for(seat, invitation.role)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_open:
            raise TeamError(_("This invitation was already accepted or revoked."))
        token = _issue_token(invitation, timezone.now())
        invitation.save(update_fields=["token_digest", "expires_at"])
        audit(request, seat, "invitation.resent", target=invitation.id, detail=_detail(invitation))
        _send_after_commit(invitation, token, seat.user)
    return invitation


def invitation_revoke(*, request: HttpRequest, seat: Seat, invitation: Invitation) -> Invitation:
    """The link stops working at once."""
    _require_admin(seat)
    _require_own_organization(seat, invitation.organization_id)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_open:
            raise TeamError(_("This invitation was already accepted or revoked."))
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit(request, seat, "invitation.revoked", target=invitation.id, detail=_detail(invitation))
    return invitation


def invitation_accept(*, request: HttpRequest, invitation: Invitation, user: User) -> Membership:
    """Makes `user` a member with the invited role, if the invitation was sent to their
    e-mail address and is still open. Each link works once."""
    with transaction.atomic():
        # The lock makes a double submit accept once and fail the second time as "used".
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .get(pk=invitation.pk)
        )
        problem = invitation_problem(invitation=invitation)
        if problem is not None:
            raise InvitationError(problem)
        if user.email.strip().lower() != invitation.email.lower():
            raise InvitationError("wrong_user")
        organization = invitation.organization
        if is_member(organization_id=organization.id, user=user):
            raise InvitationError("already_member")
        role = Role(invitation.role)
        membership = identity.membership_set(organization=organization, user=user, role=role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        seat = Seat(user=user, organization=organization, role=role)
        audit(
            request, seat, "invitation.accepted", target=invitation.id, detail=_detail(invitation)
        )
    return membership


def invitation_signup(
    *, request: HttpRequest, invitation: Invitation, username: str, password: str
) -> User:
    """A new, active account for the invited address, which then accepts the invitation.
    The address counts as verified: only its owner could have opened the link."""
    problem = invitation_problem(invitation=invitation)
    if problem is not None:
        raise InvitationError(problem)
    if identity_read.user_by_email(email=invitation.email) is not None:
        raise ValidationError(
            {"username": _("An account with this e-mail address exists: log in instead.")}
        )
    with transaction.atomic():
        try:
            with transaction.atomic():
                user = identity.user_create(
                    username=username, email=invitation.email, password=password
                )
        except IntegrityError:
            # The same name or address registered between the check and the insert.
            raise ValidationError({"username": _("This username is taken.")}) from None
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                raise
            # Only the password validators raise a bare list of messages.
            raise ValidationError({"password": error.messages}) from None
        invitation_accept(request=request, invitation=invitation, user=user)
    return user


def _detail(invitation: Invitation) -> dict[str, object]:
    return {"email": invitation.email, "role": invitation.role}


# Members ----------------------------------------------------------------------------


def member_role_change(
    *, request: HttpRequest, seat: Seat, membership: Membership, role: Role
) -> Membership:
    """Gives a member another role. Promoting to owner, or changing an owner's role,
    needs an owner; the last owner keeps the role."""
    _require_admin(seat)
    _require_own_organization(seat, membership.organization_id)
    previous = Role(membership.role)
    _require_owner_for(seat, previous, role)
    if previous == role:
        return membership
    with transaction.atomic():
        try:
            membership = identity.membership_role_change(
                organization=seat.organization, user=membership.user, role=role
            )
        except identity.LastOwnerError:
            raise TeamError(
                _("An organization needs an owner: make someone else owner first."), "role"
            ) from None
        audit(
            request,
            seat,
            "member.role_changed",
            target=str(membership.user.pk),
            detail={"user": membership.user.get_username(), "from": previous, "to": role},
        )
    return membership


def member_remove(*, request: HttpRequest, seat: Seat, membership: Membership) -> None:
    """Takes a member out of the organization; their next request no longer sees it."""
    _require_admin(seat)
    _require_own_organization(seat, membership.organization_id)
    _require_owner_for(seat, membership.role)
    user = membership.user
    with transaction.atomic():
        try:
            identity.membership_remove(organization=seat.organization, user=user)
        except identity.LastOwnerError:
            raise TeamError(
                _("An organization needs an owner: make someone else owner first.")
            ) from None
        audit(
            request,
            seat,
            "member.removed",
            target=str(user.pk),
            detail={"user": user.get_username(), "role": membership.role},
        )
