"""What every portal page needs: the signed-in person's seat in the organization they are
looking at, role checks that hold on every request (not only in templates), and the
audit trail of what they change."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from oauth import selectors as identity_read
from oauth import services as identity
from oauth.models import Organization, Role, User

P = ParamSpec("P")
SESSION_ORGANIZATION = "portal_organization_id"

# Each role may do what the roles after it may do.
RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


@dataclass(frozen=True)
class Seat:
    """The signed-in user in one organization, with the role they hold there."""

    user: User
    organization: Organization
    role: Role

    def can(self, role: Role) -> bool:
        """Whether this seat holds `role` or a higher one."""
        return RANK[self.role] >= RANK[role]


def seat_for(request: HttpRequest) -> Seat | None:
    """The organization chosen in this session, else the user's first one."""
    user = request.user
    if not isinstance(user, User):
        return None
    memberships = list(identity_read.user_memberships(user=user))
    if not memberships:
        return None
    chosen = request.session.get(SESSION_ORGANIZATION)
    membership = next((m for m in memberships if m.organization_id == chosen), memberships[0])
    return Seat(user=user, organization=membership.organization, role=Role(membership.role))


def member_view(
    role: Role = Role.VIEWER, *, write_role: Role | None = None
) -> Callable[
    [Callable[Concatenate[HttpRequest, Seat, P], HttpResponse]],
    Callable[Concatenate[HttpRequest, P], HttpResponse],
]:
    """A portal view for members of an organization. `role` is needed to see the page;
    `write_role` (default: `role`) to POST to it. Someone with no organization gets 404,
    like someone looking at another organization's objects; someone whose role is too low
    gets 403."""

    def decorate(
        view: Callable[Concatenate[HttpRequest, Seat, P], HttpResponse],
    ) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            seat = seat_for(request)
            if seat is None:
                raise Http404
            needed = (write_role or role) if request.method == "POST" else role
            if not seat.can(needed):
                raise PermissionDenied
            request.seat = seat  # type: ignore[attr-defined]  # for templates: nav and role checks
            return view(request, seat, *args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

    return decorate


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from, as the web server saw it."""
    return request.META.get("REMOTE_ADDR") or None


def audit(
    request: HttpRequest,
    seat: Seat,
    action: str,
    *,
    target: str = "",
    detail: dict[str, object] | None = None,
) -> None:
    """Record a change made through the portal (e.g. `api_key.created`)."""
    identity.audit_record(
        action=action,
        actor=seat.user,
        organization_id=seat.organization.id,
        target=target,
        detail=detail,
        ip_address=client_ip(request),
    )


# One just-issued secret (an API key, a client secret, a signing secret), held in the
# session only until the page after the redirect shows it: a reload or the back button
# then finds nothing to show, and a reload of the POST cannot issue a second one.
SHOWN_ONCE = "portal_shown_once"


def secret_keep(request: HttpRequest, *, target: str, secret: str) -> None:
    request.session[SHOWN_ONCE] = {"target": target, "secret": secret}


def secret_take(request: HttpRequest, *, target: str) -> str | None:
    """The secret kept for `target`, removed from the session as it is read."""
    kept = request.session.get(SHOWN_ONCE)
    if not isinstance(kept, dict) or kept.get("target") != target:
        return None
    del request.session[SHOWN_ONCE]
    return str(kept["secret"])


def secret_page(response: HttpResponse) -> HttpResponse:
    """A page with a secret on it must not be kept by the browser or a proxy."""
    add_never_cache_headers(response)
    return response
