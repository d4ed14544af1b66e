from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ledger import selectors as books
from ledger import services as ledger
from ledger.models import Account
from payments import pagination
from payments.apis.base import ApiView, idempotent
from payments.errors import not_found
from payments.fields import CurrencyField, MetadataField, StrictCharField, StrictSerializer
from payments.representations import account_json, balance_json, entry_json
from payments.schema import ERRORS, PAGE_PARAMETERS, list_of


class BalanceOut(serializers.Serializer[Any]):
    object = serializers.CharField()
    account = serializers.CharField()
    currency = serializers.CharField()
    available = serializers.IntegerField(help_text="posted - pending + overdraft room")
    pending = serializers.IntegerField(help_text="held by pending transfers out")
    posted = serializers.IntegerField(help_text="sum of the account's entries")


class AccountOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    livemode = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["open", "frozen", "closed"])
    metadata = serializers.DictField(child=serializers.CharField())
    balance = BalanceOut()
    created_at = serializers.DateTimeField()


class TransactionOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField()
    account = serializers.CharField()
    transfer = serializers.CharField()
    amount = serializers.IntegerField(help_text="Signed: credits positive, debits negative.")
    currency = serializers.CharField()
    balance_after = serializers.IntegerField()
    sequence = serializers.IntegerField()
    created_at = serializers.DateTimeField()


def owned_account(view: ApiView, account_id: str) -> Account:
    """The caller's account, or 404 — for another tenant's id too, never 403."""
    principal = view.principal
    account = (
        books.accounts_of(holder=principal.organization_id, livemode=principal.livemode)
        .filter(id=account_id)
        .first()
    )
    if account is None or not principal.may_see_account(account.id):
        raise not_found("account")
    return account


class AccountListApi(ApiView):
    required_scopes = {"GET": "accounts:read", "POST": "accounts:write"}

    class AccountCreateIn(StrictSerializer):
        currency = CurrencyField()
        name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
        metadata = MetadataField()

    @extend_schema(
        operation_id="accounts_list",
        parameters=PAGE_PARAMETERS,
        summary="List your accounts",
        responses={200: list_of(AccountOut), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        principal = self.principal
        query = books.accounts_of(holder=principal.organization_id, livemode=principal.livemode)
        if principal.account_ids is not None:
            query = query.filter(id__in=principal.account_ids)
        return Response(pagination.newest_first(request, query, render=account_json))

    @extend_schema(
        operation_id="accounts_create",
        summary="Open an account",
        request=AccountCreateIn,
        responses={201: AccountOut, **ERRORS},
        examples=[
            OpenApiExample(
                "A USD account",
                value={"currency": "USD", "name": "Payouts", "metadata": {"team": "ops"}},
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = self.AccountCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        principal = self.principal
        account = ledger.account_open(
            holder=principal.organization_id,
            livemode=principal.livemode,
            currency=data.validated_data["currency"],
            name=data.validated_data["name"],
            metadata=data.validated_data.get("metadata", {}),
        )
        return Response(account_json(account), status=201)


class AccountDetailApi(ApiView):
    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_retrieve",
        summary="Retrieve an account",
        responses={200: AccountOut, **ERRORS},
    )
    def get(self, request: Request, account_id: str) -> Response:
        return Response(account_json(owned_account(self, account_id)))


class AccountBalanceApi(ApiView):
    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="accounts_balance",
        summary="Read an account's balance",
        description="One row read, whatever the account's history: `posted` is the sum of "
        "its entries, `pending` what pending transfers hold, `available` what may be spent.",
        responses={200: BalanceOut, **ERRORS},
    )
    def get(self, request: Request, account_id: str) -> Response:
        return Response(balance_json(owned_account(self, account_id)))


class AccountTransactionsApi(ApiView):
    required_scopes = {"GET": "transactions:read"}

    @extend_schema(
        operation_id="accounts_transactions",
        parameters=PAGE_PARAMETERS,
        summary="List an account's ledger entries, newest first",
        responses={200: list_of(TransactionOut), **ERRORS},
    )
    def get(self, request: Request, account_id: str) -> Response:
        account = owned_account(self, account_id)
        page = pagination.page_request(request, key_type=int)
        entries = books.account_entries(
            account_id=account.id, before_seq=page.after, limit=page.limit + 1
        )
        return Response(
            pagination.page(
                entries,
                page,
                key=lambda e: e.seq,
                render=lambda e: entry_json(e, account.currency_id),
            )
        )
