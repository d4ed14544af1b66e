from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from payments import pagination, webhooks
from payments.apis.base import ApiView, idempotent
from payments.auth import Principal
from payments.errors import ApiError, not_found
from payments.events import EVENT_TYPES
from payments.fields import StrictCharField, StrictSerializer
from payments.models import WebhookDelivery, WebhookEndpoint
from payments.representations import delivery_json, webhook_endpoint_json
from payments.schema import ERRORS, PAGE_PARAMETERS, list_of

EVENT_CHOICES = ["*", *EVENT_TYPES]


class WebhookEndpointOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField()
    # Not `format: uri`: the URL is shown as it was registered, which may be an IRI
    # (a non-ASCII host or path); the sender encodes it when it connects.
    url = serializers.CharField()
    description = serializers.CharField()
    enabled_events = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=["enabled", "disabled"])
    livemode = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    secret = serializers.CharField(required=False, help_text="Only when created or rotated")


class WebhookAttemptOut(serializers.Serializer[Any]):
    attempted_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.FloatField()
    error = serializers.CharField(allow_null=True)
    response_body = serializers.CharField(help_text="The first 4 KiB")


class WebhookDeliveryOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField()
    event = serializers.CharField()
    event_type = serializers.CharField()
    webhook_endpoint = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed"])
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    attempts = WebhookAttemptOut(many=True)


# The shape of a target the sender may accept: http(s), a host, no credentials, no
# whitespace or control characters. Whether the host is public is judged when the
# endpoint is saved (literal addresses) and again at every connection (after DNS).
WEBHOOK_URL_SHAPE = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7f/?#@]+([/?#][^\\x00-\\x20\\x7f]*)?$"


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 2000,
        "pattern": WEBHOOK_URL_SHAPE,
        "description": "An http(s) URL on a public host (https in production).",
    }
)
class WebhookUrlField(StrictCharField):
    pass


class EndpointCreateIn(StrictSerializer):
    url = WebhookUrlField(max_length=2000)
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1, max_length=50
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class EndpointUpdateIn(StrictSerializer):
    url = WebhookUrlField(max_length=2000, required=False)
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        min_length=1,
        max_length=50,
        required=False,
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=["enabled", "disabled"], required=False)


def endpoints_of(principal: Principal) -> QuerySet[WebhookEndpoint]:
    """The endpoints a credential manages: its organization's in its mode; for an OAuth
    token a user granted, only those made under that grant."""
    endpoints = WebhookEndpoint.objects.filter(
        organization_id=principal.organization_id, livemode=principal.livemode
    )
    if principal.consent_id is not None:
        endpoints = endpoints.filter(consent_id=principal.consent_id)
    return endpoints


def owned_endpoint(view: ApiView, endpoint_id: str) -> WebhookEndpoint:
    endpoint = endpoints_of(view.principal).filter(id=endpoint_id).first()
    if endpoint is None:
        raise not_found("webhook endpoint")
    return endpoint


def refused(error: webhooks.EndpointError) -> ApiError:
    return ApiError(400, "validation_error", f"{error.param}: {error}", param=error.param)


class WebhookEndpointListApi(ApiView):
    required_scopes = {"GET": "webhooks:manage", "POST": "webhooks:manage"}

    @extend_schema(
        operation_id="webhook_endpoints_list",
        parameters=PAGE_PARAMETERS,
        summary="List webhook endpoints",
        responses={200: list_of(WebhookEndpointOut), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = endpoints_of(self.principal)
        return Response(pagination.newest_first(request, query, render=webhook_endpoint_json))

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Add a webhook endpoint",
        description="The signing `secret` (whsec_…) is in this response only.",
        request=EndpointCreateIn,
        responses={201: WebhookEndpointOut, **ERRORS},
        examples=[
            OpenApiExample(
                "Every transfer event",
                value={
                    "url": "https://example.com/hooks/openpay",
                    "enabled_events": ["transfer.settled", "transfer.failed"],
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = EndpointCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        principal = self.principal
        try:
            endpoint = webhooks.webhook_endpoint_create(
                organization_id=principal.organization_id,
                livemode=principal.livemode,
                consent_id=principal.consent_id,
                **data.validated_data,
            )
        except webhooks.EndpointError as error:
            raise refused(error) from error
        return Response(webhook_endpoint_json(endpoint, secret=endpoint.secret), status=201)


class WebhookEndpointDetailApi(ApiView):
    required_scopes = {
        "GET": "webhooks:manage",
        "PATCH": "webhooks:manage",
        "DELETE": "webhooks:manage",
    }

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="Retrieve a webhook endpoint",
        responses={200: WebhookEndpointOut, **ERRORS},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(webhook_endpoint_json(owned_endpoint(self, endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update",
        summary="Change a webhook endpoint (url, events, description, status)",
        request=EndpointUpdateIn,
        responses={200: WebhookEndpointOut, **ERRORS},
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        data = EndpointUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = owned_endpoint(self, endpoint_id)
        try:
            endpoint = webhooks.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        except webhooks.EndpointError as error:
            raise refused(error) from error
        return Response(webhook_endpoint_json(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        summary="Remove a webhook endpoint",
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, endpoint_id: str) -> Response:
        owned_endpoint(self, endpoint_id).delete()
        return Response(status=204)


class WebhookEndpointRotateApi(ApiView):
    required_scopes = {"POST": "webhooks:manage"}

    class RotateIn(StrictSerializer):
        pass

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="Rotate the signing secret",
        description="The new secret is in this response only; the old one keeps signing "
        "beside it for 24 hours.",
        request=RotateIn,
        responses={200: WebhookEndpointOut, **ERRORS},
        examples=[OpenApiExample("No body", value={}, request_only=True)],
    )
    @idempotent
    def post(self, request: Request, endpoint_id: str) -> Response:
        self.RotateIn(data=request.data).is_valid(raise_exception=True)
        endpoint = owned_endpoint(self, endpoint_id)
        secret = webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        return Response(webhook_endpoint_json(endpoint, secret=secret))


class WebhookDeliveryListApi(ApiView):
    required_scopes = {"GET": "webhooks:manage"}

    @extend_schema(
        operation_id="webhook_endpoints_deliveries",
        parameters=PAGE_PARAMETERS,
        summary="The deliveries owed to an endpoint, newest first",
        responses={200: list_of(WebhookDeliveryOut), **ERRORS},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = owned_endpoint(self, endpoint_id)
        query = (
            WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .prefetch_related("attempts")
        )
        return Response(pagination.newest_first(request, query, render=delivery_json))


class ReplayIn(StrictSerializer):
    since = serializers.DateTimeField()


class WebhookEndpointReplayApi(ApiView):
    required_scopes = {"POST": "webhooks:manage"}

    @extend_schema(
        operation_id="webhook_endpoints_replay",
        summary="Send an endpoint every event since a time again",
        description="Each subscribed event since `since` (at most 10,000, oldest first) gets "
        "a new delivery to this endpoint.",
        request=ReplayIn,
        responses={
            202: inline_serializer(
                name="Replay",
                fields={
                    "object": serializers.CharField(),
                    "deliveries": serializers.IntegerField(),
                },
            ),
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "Since an outage began", value={"since": "2026-12-04T08:00:00Z"}, request_only=True
            )
        ],
    )
    @idempotent
    def post(self, request: Request, endpoint_id: str) -> Response:
        data = ReplayIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = owned_endpoint(self, endpoint_id)
        count = webhooks.webhook_endpoint_replay(
            endpoint=endpoint, since=data.validated_data["since"]
        )
        return Response({"object": "replay", "deliveries": count}, status=202)
