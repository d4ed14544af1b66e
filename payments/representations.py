"""How objects look on the wire: in API responses and inside event payloads alike."""

from __future__ import annotations

from typing import Any

from ledger.models import Account, Entry, Transfer
from payments.models import Event, WebhookDelivery, WebhookEndpoint


def iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "object": "account",
        "name": account.name,
        "currency": account.currency_id,
        "livemode": account.livemode,
        "status": account.status,
        "metadata": account.metadata,
        "balance": balance_json(account),
        "created_at": iso(account.created_at),
    }


def balance_json(account: Account) -> dict[str, Any]:
    return {
        "object": "balance",
        "account": account.id,
        "currency": account.currency_id,
        "available": account.available,
        "pending": account.held,
        "posted": account.posted,
    }


def entry_json(entry: Entry, currency: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "transaction",
        "account": entry.account_id,
        "transfer": entry.transfer_id,
        "amount": entry.amount,
        "currency": currency,
        "balance_after": entry.balance_after,
        "sequence": entry.seq,
        "created_at": iso(entry.created_at),
    }


def transfer_json(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "object": "transfer",
        "source_account": transfer.source_id,
        "destination_account": transfer.destination_id,
        "amount": transfer.amount,
        "settled_amount": transfer.settled_amount,
        "currency": transfer.currency_id,
        "status": transfer.status,
        "settlement": transfer.settlement,
        "description": transfer.description,
        "metadata": transfer.metadata,
        "failure_reason": transfer.failure_reason or None,
        "reversal_of": transfer.reversal_of_id,
        "livemode": transfer.livemode,
        "sequence": transfer.version,
        "created_at": iso(transfer.created_at),
        "updated_at": iso(transfer.updated_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    """The same body a webhook receiver gets."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created_at": iso(event.created_at),
        "livemode": event.livemode,
        "data": event.data,
    }


def webhook_endpoint_json(
    endpoint: WebhookEndpoint, *, secret: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": endpoint.enabled_events,
        "status": endpoint.status,
        "livemode": endpoint.livemode,
        "created_at": iso(endpoint.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery with every attempt at it (prefetch `attempts` for lists)."""
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "event": delivery.event_id,
        "event_type": delivery.event.type,
        "webhook_endpoint": delivery.endpoint_id,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "attempts": [
            {
                "attempted_at": iso(attempt.attempted_at),
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error or None,
                "response_body": attempt.response_body,
            }
            for attempt in delivery.attempts.all()
        ],
    }
