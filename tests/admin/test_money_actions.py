"""Money moves in the admin only through its actions: void a pending transfer, refund a
settled one (with a reason), freeze or unfreeze an account. Each asks for confirmation
first, goes through the same services as the API (so it records the same events and
webhook deliveries), and writes an audit line in the same transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ledger.models import Account, AccountStatus, Entry, Transfer, TransferStatus
from oauth import services as identity
from oauth.models import AuditEntry
from payments.models import Event, WebhookDelivery
from tests.admin.conftest import Cast, post, text, verified_client

pytestmark = pytest.mark.django_db

TRANSFERS = "/admin/ledger/transfer/"
ACCOUNTS = "/admin/ledger/account/"


def act(client: Client, url: str, action: str, ids: list[str], **extra: str) -> Any:
    return post(client, url, {"action": action, "_selected_action": ids, **extra})


def audit_lines(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


# Refunds ------------------------------------------------------------------------------


def test_a_refund_first_asks_for_confirmation_and_a_reason(cast: Cast) -> None:
    settled = cast.alice_books.settled
    response = act(verified_client(cast.alice), TRANSFERS, "refund", [settled.id])
    assert response.status_code == 200
    page = text(response)
    assert "Refund transfers" in page and settled.id in page and "25.50 USD" in page
    assert 'name="reason"' in page and 'name="confirm"' in page
    settled.refresh_from_db()
    assert settled.status == TransferStatus.SETTLED


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_a_refund_without_a_proper_reason_changes_nothing(cast: Cast, reason: str) -> None:
    settled = cast.alice_books.settled
    response = act(
        verified_client(cast.alice), TRANSFERS, "refund", [settled.id], confirm="yes", reason=reason
    )
    assert response.status_code == 200
    assert "errorlist" in text(response)
    settled.refresh_from_db()
    assert settled.status == TransferStatus.SETTLED
    assert not Transfer.objects.filter(reversal_of=settled).exists()
    assert audit_lines("transfer.refunded") == []


def test_a_refund_posts_the_reversing_entries_the_event_and_an_audit_line(cast: Cast) -> None:
    books = cast.alice_books
    response = act(
        verified_client(cast.alice),
        TRANSFERS,
        "refund",
        [books.settled.id],
        confirm="yes",
        reason="Customer returned the goods",
    )
    assert response.status_code == 302

    books.settled.refresh_from_db()
    assert books.settled.status == TransferStatus.REVERSED
    reversal = Transfer.objects.get(reversal_of=books.settled)
    assert (reversal.source_id, reversal.destination_id) == (books.payee.id, books.usd.id)
    assert (reversal.status, reversal.settled_amount) == (TransferStatus.SETTLED, 2_550)
    assert "Customer returned the goods" in reversal.description
    entries = {e.account_id: e.amount for e in Entry.objects.filter(transfer=reversal)}
    assert entries == {books.payee.id: -2_550, books.usd.id: 2_550}
    payee = Account.objects.get(id=books.payee.id)
    assert payee.posted == 0

    event = Event.objects.get(organization=books.organization, type="transfer.reversed")
    assert event.data["object"]["id"] == books.settled.id
    assert WebhookDelivery.objects.filter(event=event, endpoint=books.endpoint).exists()

    [line] = audit_lines("transfer.refunded")
    assert (line.actor, line.organization_id, line.target) == (
        "alice",
        books.organization.id,
        books.settled.id,
    )
    assert line.detail["reason"] == "Customer returned the goods"
    assert line.detail["reversal"] == reversal.id
    assert line.ip_address == "127.0.0.1"


def test_a_refund_and_its_audit_line_commit_together_or_not_at_all(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(identity, "audit_record", broken)
    with pytest.raises(RuntimeError):
        act(
            verified_client(cast.alice),
            TRANSFERS,
            "refund",
            [cast.alice_books.settled.id],
            confirm="yes",
            reason="duplicate",
        )
    cast.alice_books.settled.refresh_from_db()
    assert cast.alice_books.settled.status == TransferStatus.SETTLED
    assert not Event.objects.filter(type="transfer.reversed").exists()


def test_refunding_a_pending_transfer_is_refused_with_a_message(cast: Cast) -> None:
    client = verified_client(cast.alice)
    pending = cast.alice_books.pending
    response = act(client, TRANSFERS, "refund", [pending.id], confirm="yes", reason="no")
    assert response.status_code == 302
    assert "Refused" in text(client.get(response["Location"]))
    pending.refresh_from_db()
    assert pending.status == TransferStatus.PENDING
    assert audit_lines("transfer.refunded") == []


def test_a_superuser_may_refund_any_organizations_transfer(cast: Cast) -> None:
    books = cast.bob_books
    act(
        verified_client(cast.root),
        TRANSFERS,
        "refund",
        [books.settled.id],
        confirm="yes",
        reason="support ticket 7",
    )
    books.settled.refresh_from_db()
    assert books.settled.status == TransferStatus.REVERSED
    [line] = audit_lines("transfer.refunded")
    assert (line.actor, line.organization_id) == ("root", books.organization.id)


# Voids ----------------------------------------------------------------------------------


def test_a_void_releases_the_hold_and_records_the_event_and_an_audit_line(cast: Cast) -> None:
    books = cast.alice_books
    client = verified_client(cast.alice)
    confirm_page = act(client, TRANSFERS, "void", [books.pending.id])
    assert confirm_page.status_code == 200 and "Void transfers" in text(confirm_page)
    assert Account.objects.get(id=books.usd.id).held == 700

    response = act(client, TRANSFERS, "void", [books.pending.id], confirm="yes")
    assert response.status_code == 302
    books.pending.refresh_from_db()
    assert books.pending.status == TransferStatus.VOIDED
    assert Account.objects.get(id=books.usd.id).held == 0
    assert Event.objects.filter(organization=books.organization, type="transfer.voided").exists()
    [line] = audit_lines("transfer.voided")
    assert (line.actor, line.target) == ("alice", books.pending.id)


def test_voiding_a_settled_transfer_is_refused(cast: Cast) -> None:
    settled = cast.alice_books.settled
    act(verified_client(cast.alice), TRANSFERS, "void", [settled.id], confirm="yes")
    settled.refresh_from_db()
    assert settled.status == TransferStatus.SETTLED
    assert audit_lines("transfer.voided") == []


# Freezing ---------------------------------------------------------------------------------


def test_freezing_and_unfreezing_an_account_is_confirmed_and_audited(cast: Cast) -> None:
    account = cast.alice_books.eur
    client = verified_client(cast.alice)
    confirm_page = act(client, ACCOUNTS, "freeze", [account.id])
    assert confirm_page.status_code == 200 and "Freeze accounts" in text(confirm_page)
    assert Account.objects.get(id=account.id).status == AccountStatus.OPEN

    act(client, ACCOUNTS, "freeze", [account.id], confirm="yes")
    assert Account.objects.get(id=account.id).status == AccountStatus.FROZEN
    act(client, ACCOUNTS, "unfreeze", [account.id], confirm="yes")
    assert Account.objects.get(id=account.id).status == AccountStatus.OPEN
    assert [line.target for line in audit_lines("account.frozen")] == [account.id]
    assert [line.target for line in audit_lines("account.unfrozen")] == [account.id]


def test_a_viewer_cannot_freeze_an_account(cast: Cast) -> None:
    account = cast.alice_books.eur
    act(verified_client(cast.avery), ACCOUNTS, "freeze", [account.id], confirm="yes")
    assert Account.objects.get(id=account.id).status == AccountStatus.OPEN
    assert audit_lines("account.frozen") == []


def test_alices_staff_cannot_freeze_bobs_account(cast: Cast) -> None:
    account = cast.bob_books.usd
    act(verified_client(cast.alice), ACCOUNTS, "freeze", [account.id], confirm="yes")
    assert Account.objects.get(id=account.id).status == AccountStatus.OPEN
    assert audit_lines("account.frozen") == []
