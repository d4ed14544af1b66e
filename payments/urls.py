from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt

from payments.apis import accounts, events, test_helpers, transfers, webhook_endpoints
from payments.errors import not_found, problem_response


class ObjectId:
    """Ids are letters, digits and underscores: anything else (a NUL byte, a quote)
    matches no route and is a plain 404, never a query."""

    regex = "[A-Za-z0-9_]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ObjectId, "id")


COLLECTIONS = {
    "accounts": "account",
    "transfers": "transfer",
    "events": "event",
    "webhook_endpoints": "webhook endpoint",
}


# Exempt: the API uses no cookies, and a POST to an unknown path is a 404, not a CSRF page.
@csrf_exempt
def unknown_route(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any path under /v1/ that names no operation: problem+json, never an HTML page.
    `/v1/accounts/<not an id>` is simply an account that does not exist."""
    collection, _, remainder = rest.partition("/")
    single = remainder and "/" not in remainder
    what = COLLECTIONS.get(collection, "route") if single else "route"
    return problem_response(request, not_found(what))


urlpatterns = [
    path("accounts", accounts.AccountListApi.as_view()),
    path("accounts/<id:account_id>", accounts.AccountDetailApi.as_view()),
    path("accounts/<id:account_id>/balance", accounts.AccountBalanceApi.as_view()),
    path("accounts/<id:account_id>/transactions", accounts.AccountTransactionsApi.as_view()),
    path("transfers", transfers.TransferListApi.as_view()),
    path("transfers/<id:transfer_id>", transfers.TransferDetailApi.as_view()),
    path("transfers/<id:transfer_id>/settle", transfers.TransferSettleApi.as_view()),
    path("transfers/<id:transfer_id>/void", transfers.TransferVoidApi.as_view()),
    path("transfers/<id:transfer_id>/reverse", transfers.TransferReverseApi.as_view()),
    path("transfer_batches", transfers.TransferBatchApi.as_view()),
    path("test_helpers/accounts/<id:account_id>/fund", test_helpers.FundAccountApi.as_view()),
    path("test_helpers/transfers/<id:transfer_id>/fail", test_helpers.FailTransferApi.as_view()),
    path("events", events.EventListApi.as_view()),
    path("events/<id:event_id>", events.EventDetailApi.as_view()),
    path("events/<id:event_id>/redeliver", events.EventRedeliverApi.as_view()),
    path("webhook_endpoints", webhook_endpoints.WebhookEndpointListApi.as_view()),
    path(
        "webhook_endpoints/<id:endpoint_id>", webhook_endpoints.WebhookEndpointDetailApi.as_view()
    ),
    path(
        "webhook_endpoints/<id:endpoint_id>/rotate_secret",
        webhook_endpoints.WebhookEndpointRotateApi.as_view(),
    ),
    path(
        "webhook_endpoints/<id:endpoint_id>/replay",
        webhook_endpoints.WebhookEndpointReplayApi.as_view(),
    ),
    path(
        "webhook_endpoints/<id:endpoint_id>/deliveries",
        webhook_endpoints.WebhookDeliveryListApi.as_view(),
    ),
    # (?s) and \Z: a path holding a newline (%0A) is caught too, instead of falling
    # through to Django's HTML 404 (found by `make fuzz`).
    re_path(r"^(?P<rest>[\s\S]*)\Z", unknown_route),
]
