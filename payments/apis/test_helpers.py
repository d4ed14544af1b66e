"""Test mode's helpers: they exist only for test-mode credentials (404 in live mode)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from payments import services as payments
from payments.apis.accounts import AccountOut, owned_account
from payments.apis.base import ApiView, idempotent
from payments.apis.transfers import TransferOut, owned_transfer
from payments.errors import not_found
from payments.fields import AmountField, StrictSerializer
from payments.representations import account_json, transfer_json
from payments.schema import ERRORS


class TestModeApi(ApiView):
    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        if self.principal.livemode:
            raise not_found("route in live mode: test helpers exist in test mode only")


class FundAccountApi(TestModeApi):
    required_scopes = {"POST": "transfers:write"}

    class FundAccountIn(StrictSerializer):
        amount = AmountField()

    @extend_schema(
        operation_id="test_helpers_fund_account",
        summary="Credit test money to a test-mode account",
        request=FundAccountIn,
        responses={200: AccountOut, **ERRORS},
    )
    @idempotent
    def post(self, request: Request, account_id: str) -> Response:
        data = self.FundAccountIn(data=request.data)
        data.is_valid(raise_exception=True)
        account = owned_account(self, account_id)
        payments.test_account_fund(
            holder=self.principal.organization_id,
            account_id=account.id,
            amount=data.validated_data["amount"],
        )
        account.refresh_from_db()
        return Response(account_json(account))


class FailTransferApi(TestModeApi):
    required_scopes = {"POST": "transfers:write"}

    class FailTransferIn(StrictSerializer):
        pass

    @extend_schema(
        operation_id="test_helpers_fail_transfer",
        summary="Make a pending test-mode transfer fail when it comes to settle",
        request=FailTransferIn,
        examples=[OpenApiExample("No body", value={}, request_only=True)],
        responses={200: TransferOut, **ERRORS},
    )
    @idempotent
    def post(self, request: Request, transfer_id: str) -> Response:
        self.FailTransferIn(data=request.data).is_valid(raise_exception=True)
        transfer = owned_transfer(self, transfer_id)
        marked = payments.test_transfer_fail(
            organization_id=self.principal.organization_id, transfer_id=transfer.id
        )
        return Response(transfer_json(marked))
