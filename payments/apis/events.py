from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from payments import pagination
from payments.apis.base import ApiView
from payments.errors import not_found
from payments.models import Event
from payments.representations import event_json
from payments.schema import ERRORS, list_of

# Built with type(): a declared `data` field would shadow Serializer.data for the type
# checker (at run time DRF collects the fields either way).
EventOut: type[serializers.Serializer[Any]] = type(
    "EventOut",
    (serializers.Serializer,),
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(),
        "type": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "livemode": serializers.BooleanField(),
        "data": serializers.DictField(help_text='{"object": the object as the API shows it}'),
    },
)


class EventListApi(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_list",
        summary="List events, newest first",
        responses={200: list_of(EventOut), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        principal = self.principal
        page = pagination.page_request(request)
        query = Event.objects.filter(
            organization_id=principal.organization_id, livemode=principal.livemode
        )
        if page.after:
            query = query.filter(id__lt=page.after)
        found = list(query.order_by("-id")[: page.limit + 1])
        return Response(pagination.page(found, page, key=lambda e: e.id, render=event_json))


class EventDetailApi(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_retrieve",
        summary="Retrieve an event",
        responses={200: EventOut, **ERRORS},
    )
    def get(self, request: Request, event_id: str) -> Response:
        principal = self.principal
        event = Event.objects.filter(
            id=event_id, organization_id=principal.organization_id, livemode=principal.livemode
        ).first()
        if event is None:
            raise not_found("event")
        return Response(event_json(event))
