from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path

from payments.apis import accounts, test_helpers, transfers
from payments.errors import not_found, problem_response


def unknown_route(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any path under /v1/ that names no operation: problem+json, never an HTML page."""
    return problem_response(request, not_found("route"))


urlpatterns = [
    path("accounts", accounts.AccountListApi.as_view()),
    path("accounts/<str:account_id>", accounts.AccountDetailApi.as_view()),
    path("accounts/<str:account_id>/balance", accounts.AccountBalanceApi.as_view()),
    path("accounts/<str:account_id>/transactions", accounts.AccountTransactionsApi.as_view()),
    path("transfers", transfers.TransferListApi.as_view()),
    path("transfers/<str:transfer_id>", transfers.TransferDetailApi.as_view()),
    path("transfers/<str:transfer_id>/settle", transfers.TransferSettleApi.as_view()),
    path("transfers/<str:transfer_id>/void", transfers.TransferVoidApi.as_view()),
    path("transfers/<str:transfer_id>/reverse", transfers.TransferReverseApi.as_view()),
    path("transfer_batches", transfers.TransferBatchApi.as_view()),
    path("test_helpers/accounts/<str:account_id>/fund", test_helpers.FundAccountApi.as_view()),
    path("test_helpers/transfers/<str:transfer_id>/fail", test_helpers.FailTransferApi.as_view()),
    re_path(r"^(?P<rest>.*)$", unknown_route),
]
