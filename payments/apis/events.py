from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from payments import pagination, selectors, webhooks
from payments.apis.base import ApiView, idempotent
from payments.apis.webhook_endpoints import WebhookDeliveryOut, endpoints_of
from payments.auth import Principal
from payments.errors import ApiError, not_found
from payments.fields import StrictCharField, StrictSerializer
from payments.models import Event
from payments.representations import delivery_json, event_json
from payments.schema import ERRORS, PAGE_PARAMETERS, list_of

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


def visible_events(principal: Principal) -> QuerySet[Event]:
    return selectors.events_visible(
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        account_ids=principal.account_ids,
        consent_id=principal.consent_id,
        application_id=principal.application_id,
    )


class EventListApi(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_list",
        parameters=PAGE_PARAMETERS,
        summary="List events, newest first",
        responses={200: list_of(EventOut), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = visible_events(self.principal)
        return Response(pagination.newest_first(request, query, render=event_json))


class EventDetailApi(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_retrieve",
        summary="Retrieve an event",
        responses={200: EventOut, **ERRORS},
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = visible_events(self.principal).filter(id=event_id).first()
        if event is None:
            raise not_found("event")
        return Response(event_json(event))


class RedeliverIn(StrictSerializer):
    webhook_endpoint = StrictCharField(max_length=40, required=False)


class EventRedeliverApi(ApiView):
    required_scopes = {"POST": "webhooks:manage"}

    @extend_schema(
        operation_id="events_redeliver",
        summary="Send an event again",
        description="To one `webhook_endpoint`, or to every enabled endpoint subscribed to "
        "its type. Each gets a new delivery, with its own attempts.",
        request=RedeliverIn,
        responses={201: list_of(WebhookDeliveryOut), **ERRORS},
        examples=[OpenApiExample("To every subscriber", value={}, request_only=True)],
    )
    @idempotent
    def post(self, request: Request, event_id: str) -> Response:
        data = RedeliverIn(data=request.data)
        data.is_valid(raise_exception=True)
        principal = self.principal
        event = visible_events(principal).filter(id=event_id).first()
        if event is None:
            raise not_found("event")
        endpoint = None
        if "webhook_endpoint" in data.validated_data:
            endpoint = (
                endpoints_of(principal).filter(id=data.validated_data["webhook_endpoint"]).first()
            )
            if endpoint is None:
                raise ApiError(
                    404, "not_found", "No such webhook endpoint.", param="webhook_endpoint"
                )
        if endpoint is not None and not selectors.endpoint_may_receive(endpoint, event):
            raise ApiError(
                400,
                "validation_error",
                "This endpoint was made under an OAuth grant that may not read this event.",
                param="webhook_endpoint",
            )
        owed = webhooks.event_redeliver(
            event=event, endpoint=endpoint, consent_id=principal.consent_id
        )
        return Response(
            {
                "object": "list",
                "data": [delivery_json(d) for d in owed],
                "has_more": False,
                "next_cursor": None,
            },
            status=201,
        )
