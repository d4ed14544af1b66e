"""The bank test's checker (faults/) must catch what it claims to: a transfer that ends
in a state its actions cannot explain, a key that moved money twice or despite a
refusal, a replay that is not byte for byte, a forged webhook. Each case feeds it a
history that is wrong in one way and expects one violation; the right history none."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from standardwebhooks import Webhook

from faults.checker import TransferRow, Verdict, _check_made, _check_replay, possible_finals
from faults.client import Request
from faults.receiver import FAILURES_IN_A_ROW, Receiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test-only secret


def transfer(settlement: str = "manual", amount: int = 1_000) -> TransferRow:
    return TransferRow(
        id="tr_1",
        settlement=settlement,
        status="pending",
        amount=amount,
        settled_amount=None,
        source="acct_a",
        destination="acct_b",
        metadata={"faults_key": "k"},
        reversal_of=None,
        fail_mark="",
    )


def action(kind: str, outcome: str, code: str | None = None, seq: int = 1, **body: Any) -> Request:
    return Request(
        key=f"{kind}-{seq}",
        kind=kind,
        organization="org_1",
        path=f"/v1/transfers/tr_1/{kind}",
        body=body,
        client=0,
        seq=seq,
        target="tr_1",
        outcome=outcome,
        code=code,
    )


def test_a_manual_transfer_nobody_touched_stays_pending() -> None:
    assert possible_finals(transfer(), []) == {("pending", None)}


def test_an_auto_transfer_must_have_been_settled_by_the_end() -> None:
    assert possible_finals(transfer("auto"), []) == {("settled", 1_000)}


def test_a_settle_that_answered_2xx_happened_with_its_amount() -> None:
    finals = possible_finals(transfer(), [action("settle", "ok", amount=400)])
    assert finals == {("settled", 400)}
    assert ("settled", 1_000) not in finals, "a capture of the full amount is caught"


def test_an_unresolved_settle_may_or_may_not_have_happened() -> None:
    finals = possible_finals(transfer(), [action("settle", "unknown")])
    assert finals == {("pending", None), ("settled", 1_000)}


def test_a_refused_action_changed_nothing() -> None:
    finals = possible_finals(transfer(), [action("void", "failed", "account_frozen")])
    assert finals == {("pending", None)}


def test_a_void_racing_the_settlement_worker() -> None:
    auto = transfer("auto")
    assert possible_finals(auto, [action("void", "ok")]) == {("voided", None)}
    assert possible_finals(auto, [action("void", "failed", "transfer_not_pending")]) == {
        ("settled", 1_000)
    }
    assert possible_finals(auto, [action("void", "unknown")]) == {
        ("voided", None),
        ("settled", 1_000),
    }


def test_a_transfer_marked_to_fail_fails_at_settlement() -> None:
    assert possible_finals(transfer("auto"), [action("fail", "ok")]) == {("failed", None)}


def test_two_successful_actions_that_exclude_each_other_allow_nothing() -> None:
    actions = [action("void", "ok", seq=1), action("settle", "ok", seq=2)]
    assert possible_finals(transfer(), actions) == set()


def test_a_reversal_needs_a_settled_transfer() -> None:
    actions = [action("settle", "ok", seq=1), action("reverse", "ok", seq=2)]
    assert possible_finals(transfer(), actions) == {("reversed", 1_000)}
    assert possible_finals(transfer(), [action("reverse", "ok")]) == set()


def create(outcome: str, response: Any = None, code: str | None = None) -> Request:
    return Request(
        key="k",
        kind="create",
        organization="org_1",
        path="/v1/transfers",
        body={},
        client=0,
        seq=1,
        outcome=outcome,
        response=response,
        code=code,
    )


def made(*ids: str) -> list[TransferRow]:
    rows = []
    for transfer_id in ids:
        row = transfer()
        row.id = transfer_id
        rows.append(row)
    return rows


def violations(check: Any, *args: Any) -> list[str]:
    verdict = Verdict()
    check(*args, verdict)
    return verdict.violations


def test_a_created_transfer_exists_exactly_once() -> None:
    ok = create("ok", {"id": "tr_1"})
    assert violations(_check_made, ok, made("tr_1"), 1) == []
    assert len(violations(_check_made, ok, made("tr_1", "tr_2"), 1)) == 1, "made twice"
    assert len(violations(_check_made, ok, [], 1)) == 1, "answered 201, then lost"


def test_a_refused_request_made_nothing() -> None:
    refused = create("failed", code="insufficient_funds")
    assert violations(_check_made, refused, [], 1) == []
    assert len(violations(_check_made, refused, made("tr_1"), 1)) == 1


def test_an_unresolved_batch_is_all_or_nothing() -> None:
    batch = create("unknown")
    batch.kind = "batch"
    assert violations(_check_made, batch, [], 3) == []
    assert violations(_check_made, batch, made("a", "b", "c"), 3) == []
    assert len(violations(_check_made, batch, made("a", "b"), 3)) == 1


def test_a_replay_must_be_byte_for_byte() -> None:
    first = create("ok", {"id": "tr_1"})
    first.status, first.raw = 201, b'{"id":"tr_1"}'
    again = create("ok", {"id": "tr_1"})
    again.kind, again.replay_of = "replay", first
    again.status, again.raw, again.replayed = 201, b'{"id":"tr_1"}', True
    assert violations(_check_replay, again) == []
    again.raw = b'{"id":"tr_2"}'
    assert len(violations(_check_replay, again)) == 1, "executed again"
    again.raw, again.replayed = first.raw, False
    assert len(violations(_check_replay, again)) == 1, "not marked as a replay"


def test_the_receiver_acknowledges_only_verified_events() -> None:
    receiver = Receiver(failure_rate=0.0, seed=1)
    receiver.start()
    try:
        receiver.register("org_1", SECRET)
        url = receiver.url_for("org_1")
        body = json.dumps(
            {"id": "evt_1", "type": "transfer.created", "data": {"object": {"id": "tr_1"}}}
        )
        now = int(time.time())
        signature = Webhook(SECRET).sign("evt_1", _datetime(now), body)
        headers = {"webhook-id": "evt_1", "webhook-timestamp": str(now)}
        forged = requests.post(
            url, data=body, headers={**headers, "webhook-signature": "v1,Zm9yZ2Vk"}, timeout=5
        )
        genuine = requests.post(
            url, data=body, headers={**headers, "webhook-signature": signature}, timeout=5
        )
    finally:
        receiver.stop()
    assert (forged.status_code, genuine.status_code) == (400, 204)
    assert len(receiver.refused) == 1
    assert receiver.acknowledged == {"evt_1"}


def _datetime(seconds: int) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def test_the_receiver_fails_one_event_three_times_in_a_row_at_most() -> None:
    receiver = Receiver(failure_rate=1.0, seed=1)
    receiver.register("org_1", SECRET)
    body = json.dumps({"id": "evt_1", "type": "transfer.created", "data": {"object": {}}})
    now = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(now),
        "webhook-signature": Webhook(SECRET).sign("evt_1", _datetime(now), body),
    }
    answers = [receiver.handle("/hooks/org_1", headers, body.encode()) for _ in range(5)]
    assert answers == [500] * FAILURES_IN_A_ROW + [204, 204]
    assert receiver.acknowledged == {"evt_1"}
