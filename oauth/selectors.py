"""Reads of identity."""

from __future__ import annotations

from django.db.models import QuerySet

from oauth.models import Application, Membership, Organization, User


def user_memberships(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization")


def organization_applications(*, organization: Organization) -> QuerySet[Application]:
    applications: QuerySet[Application] = Application.objects.filter(organization=organization)
    return applications.order_by("created")
