"""What must hold after the run, read from our own database, the receiver's records and
the clients' history. Each broken rule is one violation line; the run fails on any.

- The books: `manage.py ledger_verify` passes (every balance is the sum of its
  entries, every hold the sum of its pending transfers, entries chained, transfers
  balanced); money per currency and mode, system accounts included, is what it was,
  and so is the money of the harness's own accounts (nothing was funded during the
  load); no customer account is below its limit (here, or in any balance the clients
  read through the API while the faults were flying).
- Exactly once: per Idempotency-Key, a 2xx create made exactly one transfer (the one
  it answered with), a 2xx batch exactly its transfers, a key that only ever got a
  definite 4xx made none, an unresolved one none or exactly one (a batch: all or
  none); no transfer exists that no request asked for. Every transfer's final state is
  one its sequence of actions (settle, void, fail, reverse, each ok / refused /
  unknown) and the settlement worker could have produced, and a reversed transfer has
  exactly one reversal. Every definite answer is stored under its key, and sending
  the same key and bytes again replays it byte for byte.
- Events: every committed event was acknowledged by the receiver at least once; the
  receiver got no event the database does not hold, and no forged or altered one; each
  transfer has exactly one event per state it reached (created, settled, voided,
  failed, reversed), describing that state; each api_request.failed names a request
  in the request log.
- Liveness: every request resolved once the faults stopped, and every `auto` transfer
  was settled (or failed) by the worker.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

from faults.client import Request
from faults.receiver import Receiver

State = tuple[str, int | None, bool]  # status, settled amount, marked to fail


@dataclass(frozen=True)
class Money:
    """Sums of posted balances: per (currency, mode) over every account, and per
    currency over the harness organizations' accounts."""

    everything: dict[tuple[str, bool], int]
    ours: dict[str, int]


def money(conn: psycopg.Connection[Any], organizations: list[str]) -> Money:
    everything = {
        (str(currency), bool(livemode)): int(total)
        for currency, livemode, total in conn.execute(
            "SELECT currency_id, livemode, SUM(posted) FROM ledger_account "
            "GROUP BY currency_id, livemode"
        )
    }
    ours = {
        str(currency): int(total)
        for currency, total in conn.execute(
            "SELECT currency_id, SUM(posted) FROM ledger_account WHERE holder = ANY(%s) "
            "GROUP BY currency_id",
            [organizations],
        )
    }
    return Money(everything, ours)


@dataclass
class TransferRow:
    id: str
    settlement: str
    status: str
    amount: int
    settled_amount: int | None
    source: str
    destination: str
    metadata: dict[str, Any]
    reversal_of: str | None
    fail_mark: str


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def fail(self, what: str) -> None:
        self.violations.append(what)


def transfers(conn: psycopg.Connection[Any], organizations: list[str]) -> dict[str, TransferRow]:
    rows = conn.execute(
        "SELECT id, settlement, status, amount, settled_amount, source_id, destination_id, "
        "metadata, reversal_of_id, fail_at_settlement FROM ledger_transfer "
        "WHERE holder = ANY(%s)",
        [organizations],
    )
    return {row[0]: TransferRow(*row) for row in rows}


def check_books(
    conn: psycopg.Connection[Any],
    organizations: list[str],
    before: Money,
    verify_output: tuple[int, str],
    balance_reads: list[str],
    verdict: Verdict,
) -> None:
    code, output = verify_output
    if code != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        verdict.fail(f"ledger_verify exited {code}: {' / '.join(lines[-2:])[:500]}")
    after = money(conn, organizations)
    if after.everything != before.everything:
        verdict.fail(f"money not conserved: before {before.everything}, after {after.everything}")
    if after.ours != before.ours:
        verdict.fail(f"the harness's accounts hold {after.ours}, not {before.ours}")
    for account, posted, held in conn.execute(
        "SELECT id, posted, held FROM ledger_account "
        "WHERE kind <> 'system' AND posted - held + overdraft_limit < 0"
    ):
        verdict.fail(f"account {account} below its limit: posted {posted}, held {held}")
    for seen in balance_reads[:20]:
        verdict.fail(f"a balance read through the API was below its limit: {seen}")
    verdict.figures["money"] = {
        f"{currency}{'' if not livemode else ' live'}": total
        for (currency, livemode), total in sorted(after.everything.items())
    }


def check_requests(
    conn: psycopg.Connection[Any],
    organizations: list[str],
    history: list[Request],
    verdict: Verdict,
) -> dict[str, TransferRow]:
    books = transfers(conn, organizations)
    by_key: dict[str, list[TransferRow]] = defaultdict(list)
    for row in books.values():
        key = row.metadata.get("faults_key") if isinstance(row.metadata, dict) else None
        if key:
            by_key[str(key)].append(row)
        elif row.reversal_of is None:
            verdict.fail(f"transfer {row.id} was made by no request of the harness")
    asked = {r.key for r in history}
    for key in by_key:
        if key not in asked:
            verdict.fail(f"transfers {[t.id for t in by_key[key]]} carry unknown key {key}")

    stored = {
        str(key): int(status)
        for key, status in conn.execute(
            "SELECT key, status FROM payments_idempotencyrecord WHERE organization_id = ANY(%s)",
            [organizations],
        )
    }
    actions: dict[str, list[Request]] = defaultdict(list)
    for request in history:
        if request.kind == "replay":
            _check_replay(request, verdict)
            continue
        if request.outcome == "unknown":
            verdict.fail(
                f"{request.kind} {request.key} never resolved after {request.attempts} "
                "attempts (the faults had stopped)"
            )
        elif request.status != 400 and stored.get(request.key) != request.status:
            # (A 400 is a refusal by validation, which is not stored by design.)
            verdict.fail(
                f"{request.kind} {request.key} answered {request.status} but its key stores "
                f"{stored.get(request.key)}"
            )
        if request.kind == "create":
            _check_made(request, by_key.get(request.key, []), 1, verdict)
        elif request.kind == "batch":
            _check_made(
                request, by_key.get(request.key, []), len(request.body["transfers"]), verdict
            )
        elif request.target is not None:
            actions[request.target].append(request)

    reversals: dict[str, list[TransferRow]] = defaultdict(list)
    for row in books.values():
        if row.reversal_of is not None:
            reversals[row.reversal_of].append(row)
    finals: Counter[str] = Counter()
    for row in books.values():
        if row.reversal_of is not None:
            continue
        finals[row.status] += 1
        done = sorted(actions.get(row.id, []), key=lambda r: r.seq)
        allowed = possible_finals(row, done)
        if (row.status, row.settled_amount) not in allowed:
            verdict.fail(
                f"transfer {row.id} ({row.settlement}, amount {row.amount}) ended "
                f"{row.status}/{row.settled_amount}, but its actions "
                f"{[(r.kind, r.body.get('amount'), r.outcome, r.code) for r in done]} "
                f"allow only {sorted(allowed, key=str)}"
            )
        _check_reversal(row, reversals.get(row.id, []), verdict)
    verdict.figures["transfers"] = dict(sorted(finals.items())) | {
        "reversals": sum(len(found) for found in reversals.values())
    }
    return books


def _check_replay(request: Request, verdict: Verdict) -> None:
    original = request.replay_of
    if original is None or request.outcome == "unknown":
        return
    if request.status != original.status or request.raw != original.raw or not request.replayed:
        verdict.fail(
            f"key {request.key} sent again answered {request.status} "
            f"(replayed: {request.replayed}) {request.raw[:120]!r}, first "
            f"{original.status} {original.raw[:120]!r}"
        )


def _check_made(request: Request, made: list[TransferRow], count: int, verdict: Verdict) -> None:
    what = f"{request.kind} {request.key}"
    if request.outcome == "ok":
        answered = (
            [t["id"] for t in request.response["data"]]
            if request.kind == "batch"
            else [request.response["id"]]
        )
        if sorted(answered) != sorted(t.id for t in made):
            verdict.fail(f"{what} answered {answered} but the books hold {[t.id for t in made]}")
    elif request.outcome == "failed":
        if made:
            verdict.fail(f"{what} was refused ({request.code}) but made {[t.id for t in made]}")
    elif len(made) not in (0, count):
        verdict.fail(f"{what} (unresolved) made {len(made)} of its {count} transfers")


def _check_reversal(row: TransferRow, found: list[TransferRow], verdict: Verdict) -> None:
    expected = 1 if row.status == "reversed" else 0
    if len(found) != expected:
        verdict.fail(f"transfer {row.id} is {row.status} with {len(found)} reversals")
        return
    for reversal in found:
        if (
            reversal.status != "settled"
            or reversal.settled_amount != row.settled_amount
            or (reversal.source, reversal.destination) != (row.destination, row.source)
        ):
            verdict.fail(f"reversal {reversal.id} of {row.id} does not undo it")


def possible_finals(row: TransferRow, actions: list[Request]) -> set[tuple[str, int | None]]:
    """Every (status, settled amount) the transfer may end in, given its actions in
    order and their outcomes, with the settlement worker free to act between any two
    (for `auto` transfers) and certain to have acted by the end (the run drains)."""
    auto = row.settlement == "auto"

    def worker(state: State) -> set[State]:
        if not auto or state[0] != "pending":
            return {state}
        settled: State = ("failed", None, True) if state[2] else ("settled", row.amount, False)
        return {state, settled}

    states: set[State] = {("pending", None, False)}
    for action in actions:
        following: set[State] = set()
        for before in {s for state in states for s in worker(state)}:
            effect = _effect(row, action, before)
            if action.outcome == "ok":
                if effect is not None:
                    following.add(effect)
            elif action.outcome == "failed":
                # A refusal changed nothing, and one that names the state proves it.
                if action.code == "transfer_not_pending" and before[0] == "pending":
                    continue
                if action.code == "transfer_not_settled" and before[0] == "settled":
                    continue
                following.add(before)
            else:
                following.add(before)
                if effect is not None:
                    following.add(effect)
        states = following
    finals = set()
    for state in states:
        for end in worker(state):
            if not (auto and end[0] == "pending"):
                finals.add((end[0], end[1]))
    return finals


def _effect(row: TransferRow, action: Request, state: State) -> State | None:
    """The state after `action` succeeds in `state`; None if it cannot succeed there."""
    status, settled, marked = state
    if action.kind == "settle":
        amount = action.body.get("amount", row.amount)
        if status != "pending" or amount > row.amount:
            return None
        return ("failed", None, True) if marked else ("settled", amount, False)
    if action.kind == "void":
        return ("voided", None, marked) if status == "pending" else None
    if action.kind == "fail":
        return ("pending", None, True) if status == "pending" else None
    if action.kind == "reverse":
        return ("reversed", settled, marked) if status == "settled" else None
    raise AssertionError(f"unknown action {action.kind}")


def events(conn: psycopg.Connection[Any], organizations: list[str]) -> dict[str, dict[str, Any]]:
    return {
        str(event_id): {"type": event_type, "object": data.get("object") or {}}
        for event_id, event_type, data in conn.execute(
            "SELECT id, type, data FROM payments_event WHERE organization_id = ANY(%s)",
            [organizations],
        )
    }


def check_events(
    conn: psycopg.Connection[Any],
    organizations: list[str],
    books: dict[str, TransferRow],
    committed: set[str],
    receiver: Receiver,
    verdict: Verdict,
) -> None:
    """`committed`: the events in the database when the drain ended (all of them were
    then acknowledged, or the drain timed out)."""
    stored = events(conn, organizations)
    missing = sorted(committed - receiver.acknowledged)
    for event_id in missing[:20]:
        verdict.fail(f"event {event_id} ({stored.get(event_id, {}).get('type')}) never delivered")
    if len(missing) > 20:
        verdict.fail(f"... and {len(missing) - 20} more events never delivered")
    for event_id, seen in receiver.seen.items():
        event = stored.get(event_id)
        if event is None:
            verdict.fail(f"the receiver got event {event_id} ({seen.type}), not in the books")
        elif event["type"] != seen.type or event["object"].get("id") != seen.object_id:
            verdict.fail(f"event {event_id} was delivered as {seen}, stored as {event}")
    for event_id in sorted(set(receiver.mismatched))[:20]:
        verdict.fail(f"event {event_id} was delivered with a different body or webhook-id")
    for refusal in receiver.refused[:20]:
        verdict.fail(f"a webhook request failed verification: {refusal}")

    per_transfer: dict[str, Counter[str]] = defaultdict(Counter)
    examples = []
    for event_id, event in stored.items():
        kind, obj = event["type"], event["object"]
        if kind.startswith("transfer."):
            transfer = books.get(str(obj.get("id")))
            if transfer is None:
                verdict.fail(
                    f"event {event_id} ({kind}) is about {obj.get('id')}, not in the books"
                )
                continue
            per_transfer[transfer.id][kind] += 1
            state = kind.removeprefix("transfer.")
            if state != "created" and obj.get("status") != state:
                verdict.fail(f"event {event_id} ({kind}) shows status {obj.get('status')}")
            if kind == "transfer.settled" and obj.get("settled_amount") != transfer.settled_amount:
                verdict.fail(
                    f"event {event_id} settled {transfer.id} for {obj.get('settled_amount')}, "
                    f"the books say {transfer.settled_amount}"
                )
        elif kind == "api_request.failed":
            examples.append((event_id, str(obj.get("example_request_id"))))
        else:
            verdict.fail(f"unexpected event {event_id} ({kind}): {json.dumps(obj)[:200]}")
    logged = {
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM payments_requestlog WHERE id = ANY(%s)", [[r for _, r in examples]]
        )
    }
    for event_id, request_id in examples:
        if request_id not in logged:
            verdict.fail(f"api_request.failed {event_id} names {request_id}, not in the log")

    for transfer in books.values():
        if transfer.reversal_of is not None:
            continue
        reached = {
            "transfer.created": 1,
            "transfer.settled": int(transfer.status in ("settled", "reversed")),
            "transfer.voided": int(transfer.status == "voided"),
            "transfer.failed": int(transfer.status == "failed"),
            "transfer.reversed": int(transfer.status == "reversed"),
        }
        counted = per_transfer.get(transfer.id, Counter())
        wrong = {k: counted.get(k, 0) for k, v in reached.items() if counted.get(k, 0) != v}
        if wrong:
            verdict.fail(f"transfer {transfer.id} ({transfer.status}) has events {wrong}")
    types = Counter(event["type"] for event in stored.values())
    verdict.figures["events_by_type"] = dict(sorted(types.items()))


def check_api_failure_reports(
    conn: psycopg.Connection[Any],
    organizations: list[str],
    minutes: list[dt.datetime],
    verdict: Verdict,
) -> None:
    """Each of `minutes` (complete, and past the time its report was due) has one
    api_request.failed event per organization, mode, application and error code that
    failed in it, counting at most the failures its request log holds; no minute is
    reported twice."""
    reported: Counter[tuple[str, bool, str, str, str]] = Counter()
    counts: dict[tuple[str, bool, str, str, str], int] = {}
    for organization, livemode, data in conn.execute(
        "SELECT organization_id, livemode, data FROM payments_event "
        "WHERE organization_id = ANY(%s) AND type = 'api_request.failed'",
        [organizations],
    ):
        obj = data.get("object") or {}
        group = (
            organization,
            livemode,
            str(obj.get("minute")),
            obj.get("application") or "",
            str(obj.get("error_code")),
        )
        reported[group] += 1
        counts[group] = int(obj.get("count") or 0)
    for group, times in reported.items():
        if times > 1:
            verdict.fail(f"api_request.failed reported {times} times for {group}")
    for minute in minutes:
        stamp = minute.isoformat().replace("+00:00", "Z")
        for organization, livemode, application, code, failures in conn.execute(
            "SELECT organization_id, livemode, application_id, error_code, COUNT(*) "
            "FROM payments_requestlog WHERE organization_id = ANY(%s) AND status >= 400 "
            "AND created_at >= %s AND created_at < %s "
            "GROUP BY organization_id, livemode, application_id, error_code",
            [organizations, minute, minute + dt.timedelta(minutes=1)],
        ):
            group = (organization, livemode, stamp, application, code or "unknown")
            if group not in reported:
                verdict.fail(f"{failures} failed requests of {stamp} were never reported: {group}")
            elif not 1 <= counts[group] <= failures:
                # Fewer is possible: a line still buffered (its flush held up by a fault)
                # when its minute was reported is not counted.
                verdict.fail(f"api_request.failed {group} counts {counts[group]}, not {failures}")
    verdict.figures["api_failure_minutes_checked"] = len(minutes)


# A line waits in Redis until a flush moves it (every second, later when the worker is
# busy or down): a Redis shut down within this long after a request may take its line.
BUFFERED_FOR = 60.0


def check_request_log(
    conn: psycopg.Connection[Any],
    organizations: list[str],
    answered: list[tuple[str, float]],
    redis_restarts: list[float],
    verdict: Verdict,
) -> None:
    """Every definite answer (2xx, 4xx) is in the organization's request log, but for
    lines still buffered in a Redis that was shut down (it keeps nothing on disk here):
    a line is excused if Redis went down after it was answered and soon enough."""
    ids = [request_id for request_id, _ in answered]
    logged = {
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM payments_requestlog WHERE organization_id = ANY(%s) AND id = ANY(%s)",
            [organizations, ids],
        )
    }
    missing = [(request_id, at) for request_id, at in answered if request_id not in logged]
    unexplained = [
        (request_id, at)
        for request_id, at in missing
        if not any(at - 2 <= down <= at + BUFFERED_FOR for down in redis_restarts)
    ]
    for request_id, at in unexplained[:20]:
        verdict.fail(f"request {request_id}, answered at {at:.1f}, is not in the request log")
    if len(unexplained) > 20:
        verdict.fail(f"... and {len(unexplained) - 20} more requests not in the request log")
    verdict.figures["request_log"] = {
        "answered": len(ids),
        "logged": len(ids) - len(missing),
        "lost_with_redis": len(missing) - len(unexplained),
    }
