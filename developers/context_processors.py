"""Template context that every portal page needs."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from developers.portal import SESSION_ORGANIZATION
from oauth import selectors as identity_read
from oauth.models import Membership, User


def organizations(request: HttpRequest) -> dict[str, object]:
    """The signed-in user's memberships and the one the portal shows, for the
    organization switcher in the header: one query, run only if a template looks."""

    def memberships() -> list[Membership]:
        user = getattr(request, "user", None)
        if not isinstance(user, User):
            return []
        return list(identity_read.user_memberships(user=user))

    listed = SimpleLazyObject(memberships)

    def current() -> str:
        # Pages outside member_view (docs, security) have no seat: show what the next
        # portal page will, the session's choice if still valid, else the first.
        seat = getattr(request, "seat", None)
        if seat is not None:
            return str(seat.organization.id)
        ids = [membership.organization_id for membership in listed]
        chosen = str(request.session.get(SESSION_ORGANIZATION, ""))
        return chosen if chosen in ids else (ids[0] if ids else "")

    return {"portal_memberships": listed, "portal_organization_id": SimpleLazyObject(current)}
