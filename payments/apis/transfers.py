from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ledger import errors as ledger_errors
from ledger import services as ledger
from ledger.models import Settlement, Transfer
from payments import pagination
from payments import services as payments
from payments.apis.base import ApiView, idempotent
from payments.errors import ApiError, from_ledger, not_found
from payments.fields import (
    AmountField,
    CurrencyField,
    MetadataField,
    StrictCharField,
    StrictSerializer,
)
from payments.representations import transfer_json
from payments.schema import ERRORS, PAGE_PARAMETERS, list_of

MAX_BATCH = ledger.MAX_BATCH


class TransferOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField()
    source_account = serializers.CharField()
    destination_account = serializers.CharField()
    amount = serializers.IntegerField(help_text="Held at creation, in minor units")
    settled_amount = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "settled", "failed", "voided", "reversed"])
    settlement = serializers.ChoiceField(choices=["auto", "manual"])
    description = serializers.CharField()
    metadata = serializers.DictField(child=serializers.CharField())
    failure_reason = serializers.CharField(allow_null=True)
    reversal_of = serializers.CharField(allow_null=True)
    livemode = serializers.BooleanField()
    sequence = serializers.IntegerField(help_text="Bumped by every change of state")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TransferIn(StrictSerializer):
    source_account = StrictCharField(max_length=40)
    destination_account = StrictCharField(max_length=40)
    amount = AmountField()
    currency = CurrencyField()
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    metadata = MetadataField()
    settlement = serializers.ChoiceField(choices=["auto", "manual"], default="auto")


TRANSFER_EXAMPLE = OpenApiExample(
    "A payment of 10.50 USD",
    value={
        "source_account": "acct_01jf3k2v8y6q4m7c9d0e5f1g2h",
        "destination_account": "acct_01jf3k2v8y6q4m7c9d0e5f1g2j",
        "amount": 1050,
        "currency": "USD",
        "description": "Order 1042",
    },
    request_only=True,
)


def owned_transfer(view: ApiView, transfer_id: str) -> Transfer:
    principal = view.principal
    transfer = Transfer.objects.filter(
        id=transfer_id, holder=principal.organization_id, livemode=principal.livemode
    ).first()
    if transfer is None or not (
        principal.may_see_account(transfer.source_id)
        or principal.may_see_account(transfer.destination_id)
    ):
        raise not_found("transfer")
    return transfer


def check_granted(view: ApiView, *account_ids: str, item: str = "") -> None:
    """An OAuth token reaches only the accounts its user granted; others are not found.
    `item` names the batch item (`transfers[3]`) the accounts come from."""
    for account_id, param in zip(
        account_ids, ("source_account", "destination_account"), strict=False
    ):
        if not view.principal.may_see_account(account_id):
            detail = f"No such {param.replace('_', ' ')}."
            if item:
                detail, param = f"{item}: {detail}", f"{item}.{param}"
            raise ApiError(404, "not_found", detail, param=param)


class TransferListApi(ApiView):
    required_scopes = {"GET": "transfers:read", "POST": "transfers:write"}

    @extend_schema(
        operation_id="transfers_list",
        parameters=PAGE_PARAMETERS,
        summary="List transfers, newest first",
        responses={200: list_of(TransferOut), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        principal = self.principal
        query = Transfer.objects.filter(
            holder=principal.organization_id, livemode=principal.livemode
        )
        if principal.account_ids is not None:
            query = query.filter(source_id__in=principal.account_ids)
        return Response(pagination.newest_first(request, query, render=transfer_json))

    @extend_schema(
        operation_id="transfers_create",
        summary="Make a transfer",
        description="Holds the amount on the source at once and answers `201` with "
        "`status: pending`. `settlement: auto` transfers are settled by a worker within "
        "seconds; `manual` ones wait for `/settle` or `/void`.",
        request=TransferIn,
        responses={201: TransferOut, **ERRORS},
        examples=[TRANSFER_EXAMPLE],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = TransferIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        check_granted(self, fields["source_account"], fields["destination_account"])
        principal = self.principal
        transfer = payments.transfer_create(
            organization_id=principal.organization_id,
            livemode=principal.livemode,
            spec=ledger.TransferSpec(
                source_id=fields["source_account"],
                destination_id=fields["destination_account"],
                amount=fields["amount"],
                currency=fields["currency"],
                settlement=Settlement(fields["settlement"]),
                description=fields["description"],
                metadata=fields.get("metadata", {}),
            ),
        )
        return Response(transfer_json(transfer), status=201)


class TransferDetailApi(ApiView):
    required_scopes = {"GET": "transfers:read"}

    @extend_schema(
        operation_id="transfers_retrieve",
        summary="Retrieve a transfer",
        responses={200: TransferOut, **ERRORS},
    )
    def get(self, request: Request, transfer_id: str) -> Response:
        return Response(transfer_json(owned_transfer(self, transfer_id)))


class TransferSettleApi(ApiView):
    required_scopes = {"POST": "transfers:write"}

    class TransferSettleIn(StrictSerializer):
        amount = AmountField(required=False)

    @extend_schema(
        operation_id="transfers_settle",
        summary="Settle a manual transfer, all of it or a smaller amount",
        request=TransferSettleIn,
        examples=[OpenApiExample("A partial capture", value={"amount": 500}, request_only=True)],
        responses={200: TransferOut, **ERRORS},
    )
    @idempotent
    def post(self, request: Request, transfer_id: str) -> Response:
        data = self.TransferSettleIn(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = owned_transfer(self, transfer_id)
        settled = payments.transfer_settle(
            organization_id=self.principal.organization_id,
            transfer_id=transfer.id,
            amount=data.validated_data.get("amount"),
        )
        return Response(transfer_json(settled))


class TransferVoidApi(ApiView):
    required_scopes = {"POST": "transfers:write"}

    class TransferVoidIn(StrictSerializer):
        pass

    @extend_schema(
        operation_id="transfers_void",
        summary="Release a pending transfer",
        request=TransferVoidIn,
        examples=[OpenApiExample("No body", value={}, request_only=True)],
        responses={200: TransferOut, **ERRORS},
    )
    @idempotent
    def post(self, request: Request, transfer_id: str) -> Response:
        self.TransferVoidIn(data=request.data).is_valid(raise_exception=True)
        transfer = owned_transfer(self, transfer_id)
        voided = payments.transfer_void(
            organization_id=self.principal.organization_id, transfer_id=transfer.id
        )
        return Response(transfer_json(voided))


class TransferReverseApi(ApiView):
    required_scopes = {"POST": "transfers:write"}

    class TransferReverseIn(StrictSerializer):
        description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="transfers_reverse",
        summary="Refund a settled transfer",
        description="Posts a new, opposite transfer (its `reversal_of` names this one); "
        "entries are never edited. Answers with the original transfer, now `reversed`.",
        request=TransferReverseIn,
        examples=[OpenApiExample("A refund", value={"description": "Refund"}, request_only=True)],
        responses={200: TransferOut, **ERRORS},
    )
    @idempotent
    def post(self, request: Request, transfer_id: str) -> Response:
        data = self.TransferReverseIn(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = owned_transfer(self, transfer_id)
        reversal = payments.transfer_reverse(
            organization_id=self.principal.organization_id,
            transfer_id=transfer.id,
            description=data.validated_data["description"],
        )
        return Response(transfer_json(reversal.original))


class TransferBatchApi(ApiView):
    required_scopes = {"POST": "transfers:write"}

    class TransferBatchIn(StrictSerializer):
        transfers = serializers.ListField(
            child=TransferIn(), min_length=1, max_length=MAX_BATCH, allow_empty=False
        )

    @extend_schema(
        operation_id="transfer_batches_create",
        summary="Make up to 1,000 transfers, all or none",
        request=TransferBatchIn,
        examples=[
            OpenApiExample(
                "Two payments",
                value={
                    "transfers": [
                        TRANSFER_EXAMPLE.value,
                        {**TRANSFER_EXAMPLE.value, "amount": 2500},
                    ]
                },
                request_only=True,
            )
        ],
        responses={
            201: list_of(TransferOut),
            **ERRORS,
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = self.TransferBatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        principal = self.principal
        specs = []
        for index, item in enumerate(data.validated_data["transfers"]):
            check_granted(
                self,
                item["source_account"],
                item["destination_account"],
                item=f"transfers[{index}]",
            )
            specs.append(
                ledger.TransferSpec(
                    source_id=item["source_account"],
                    destination_id=item["destination_account"],
                    destination_holder=principal.organization_id,
                    amount=item["amount"],
                    currency=item["currency"],
                    settlement=Settlement(item["settlement"]),
                    description=item["description"],
                    metadata=item.get("metadata", {}),
                )
            )
        try:
            transfers = payments.transfer_batch_create(
                organization_id=principal.organization_id, livemode=principal.livemode, specs=specs
            )
        except ledger_errors.BatchItemError as error:
            problem = from_ledger(error.error)
            problem.param = (
                f"transfers[{error.index}].{problem.param}"
                if problem.param
                else (f"transfers[{error.index}]")
            )
            problem.detail = f"transfers[{error.index}]: {problem.detail}"
            raise problem from error
        return Response(
            {
                "object": "list",
                "data": [transfer_json(t) for t in transfers],
                "has_more": False,
                "next_cursor": None,
            },
            status=201,
        )
