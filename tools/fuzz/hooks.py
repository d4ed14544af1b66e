"""Schemathesis hooks for `make fuzz` (loaded with SCHEMATHESIS_HOOKS=tools.fuzz.hooks).

Two checks of our own, beside Schemathesis's:

- `valid_request_refused_as_malformed`: a request the schema allows may be refused for a
  business rule (funds, state, same account, overflow), never as malformed. Schemathesis's
  positive_data_acceptance is told that 400 may happen (same_account is a 400 the schema
  cannot express); this check looks at the 400's `code` and fails on every other reason.
- `other_tenant_ids_never_shown`: no successful answer to the merchant's key ever shows
  an id of the other organization's accounts.

And realistic data: a schema cannot name the accounts that exist, so half of the valid
transfers and batches Schemathesis generates are sent between the merchant's own funded
accounts of one currency (or, now and then, to the other organization's account, which
must be 404); half of the valid settles take the whole amount, and half of the valid
reversals name a transfer run.py settled beforehand. That is what gets the fuzzer past
"no such transfer" to settle, void, fail and reverse.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st
from hypothesis.internal.reflection import get_pretty_function_description
from schemathesis.generation.jsonschema import strategy as jsonschema_strategy

# The world `tools/fuzz/run.py` seeded: the merchant's pairs of same-currency accounts,
# and the other organization's account ids.
WORLD: dict[str, Any] = json.loads(Path(os.environ["FUZZ_WORLD"]).read_text())
PAIRS: list[dict[str, str]] = WORLD["pairs"]
SETTLED_TRANSFERS: list[str] = WORLD["settled_transfers"]
OTHER_TENANT_ACCOUNTS: list[str] = WORLD["other_tenant_accounts"]

# 400s that refuse a well-formed request for what it asks (docs/errors.md).
BUSINESS_REFUSALS = {"same_account", "currency_mismatch", "amount_exceeds_hold", "balance_overflow"}
# Parameters whose valid values the schema cannot list: a cursor is an opaque token from
# `next_cursor`, and whether a webhook URL's host is public is judged by its address.
OPAQUE_PARAMETERS = {"cursor", "url"}


def _is_positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and bool(meta.generation.mode.is_positive)


def _at(body: Any, param: str) -> Any:
    """The value a problem's `param` names in the request body: "transfers[0].amount"."""
    value = body
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", param):
        try:
            value = value[int(step[1:-1])] if step.startswith("[") else value[step]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    return value


def _excused(refusal: dict[str, Any], body: Any) -> bool:
    code, param = refusal.get("code"), refusal.get("param") or ""
    if code in BUSINESS_REFUSALS:
        return True
    if param.rsplit(".", 1)[-1] in OPAQUE_PARAMETERS:
        return True
    # JSON Schema's `integer` admits 10.0; the API refuses it on purpose
    # (docs/errors.md#invalid_amount).
    return code == "invalid_amount" and isinstance(_at(body, param), float)


@schemathesis.check
def valid_request_refused_as_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the schema allows is never refused as malformed."""
    if response.status_code != 400 or not _is_positive(case):
        return None
    try:
        problem = response.json()
    except ValueError:
        raise AssertionError("a 400 without a problem+json body") from None
    refusals = problem.get("errors") or [problem]
    unexcused = [r for r in refusals if not _excused(r, case.body)]
    if unexcused:
        raise AssertionError(
            "A request the schema allows was refused as malformed: "
            + "; ".join(
                f"`{r.get('code')}` on `{r.get('param')}`: {r.get('detail')}" for r in unexcused
            )
            + "\n\nEither the schema is too loose or the server too strict: make them agree."
        )
    return None


@schemathesis.check
def other_tenant_ids_never_shown(ctx: Any, response: Any, case: Any) -> bool | None:
    """The merchant's key never sees the other organization's accounts."""
    if not 200 <= response.status_code < 300 or not response.content:
        return None
    text = response.text
    shown = [account for account in OTHER_TENANT_ACCOUNTS if account in text]
    if shown:
        raise AssertionError(f"another organization's account ids in the answer: {shown}")
    return None


_KEYS = itertools.count()
_VALID_KEY = re.compile(r"[\x20-\x7e\xa1-\xac\xae-\xff]{1,255}")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A valid Idempotency-Key is made unique (a suffix), as a client's keys are. Every
    phase reuses drawn values ("0", or one key for a whole coverage series), which would
    replay another request's answer (an old id the stateful checks then look for) or be
    refused as reused, and hide what is under test. Replays and reuse are proved by
    tests/api/test_idempotency.py."""
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:240]}~{next(_KEYS)}"


# Realistic transfers -------------------------------------------------------------------

_REAL_TRANSFER = st.fixed_dictionaries(
    {
        "pair": st.sampled_from(PAIRS),
        "amount": st.integers(min_value=1, max_value=10_000),
        "settlement": st.sampled_from(["auto", "manual"]),
        "other_tenant": st.integers(min_value=0, max_value=9).map(lambda n: n == 0),
    }
)


def _real(item: Any, drawn: dict[str, Any]) -> dict[str, Any]:
    pair = drawn["pair"]
    destination = OTHER_TENANT_ACCOUNTS[0] if drawn["other_tenant"] else pair["destination_account"]
    return {
        **(item if isinstance(item, dict) else {}),
        "source_account": pair["source_account"],
        "destination_account": destination,
        "currency": pair["currency"],
        "amount": drawn["amount"],
        "settlement": drawn["settlement"],
    }


def _with_body(case: Any, body: Any) -> Any:
    # Each draw of the outer strategy builds a new case, so changing it here is safe;
    # Schemathesis revalidates the changed body (it stays positive: it is valid).
    case.body = body
    return case


def _realistic(case: Any) -> Any:
    if not _is_positive(case) or not isinstance(case.body, dict):
        return st.just(case)
    if "transfers" in case.body and isinstance(case.body["transfers"], list):
        items = case.body["transfers"][:3] or [{}]
        body = st.tuples(*(_REAL_TRANSFER for _ in items)).map(
            lambda drawn: {
                **case.body,
                "transfers": [_real(i, d) for i, d in zip(items, drawn, strict=True)],
            }
        )
    else:
        body = _REAL_TRANSFER.map(lambda drawn: _real(case.body, drawn))
    return st.one_of(st.just(case), body.map(lambda real: _with_body(case, real)))


def _in_full(case: Any) -> Any:
    """Half of the valid settles take the whole amount (no `amount`): a drawn partial
    amount is nearly always more than the hold, and a settled transfer is what the
    stateful phase then reverses."""
    if not _is_positive(case) or not isinstance(case.body, dict):
        return st.just(case)
    return st.one_of(st.just(case), st.just({}).map(lambda body: _with_body(case, body)))


def _settled(case: Any) -> Any:
    """Half of the valid reversals name a transfer run.py settled: each can be reversed
    once (200), and after that must be refused (409 transfer_not_settled)."""
    if not _is_positive(case):
        return st.just(case)
    return st.one_of(
        st.just(case),
        st.sampled_from(SETTLED_TRANSFERS).map(lambda transfer: _with_transfer(case, transfer)),
    )


def _with_transfer(case: Any, transfer: str) -> Any:
    case.path_parameters = {**case.path_parameters, "transfer_id": transfer}
    return case


REALISTIC = {
    "POST /v1/transfers": _realistic,
    "POST /v1/transfer_batches": _realistic,
    "POST /v1/transfers/{transfer_id}/settle": _in_full,
    "POST /v1/transfers/{transfer_id}/reverse": _settled,
}


@schemathesis.hook("before_generate_case")
def realistic_transfers(context: Any, strategy: Any) -> Any:
    operation = context.operation
    realistic = REALISTIC.get(operation.label) if operation is not None else None
    return strategy.flatmap(realistic) if realistic else strategy


# What every operation answered ---------------------------------------------------------

# {"POST /v1/transfers": {"201": 120, "404": 300, ...}}, written to FUZZ_STATUSES at exit
# for run.py's figures (which operations the fuzzer got through to a success).
_STATUSES: dict[str, Counter[str]] = defaultdict(Counter)
_STATUSES_LOCK = threading.Lock()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    status = str(response.status_code)
    if response.status_code >= 400:
        try:
            status += f" {response.json().get('code')}"
        except (ValueError, AttributeError):
            status += " (not problem+json)"
    with _STATUSES_LOCK:
        _STATUSES[case.operation.label][status] += 1


@atexit.register
def _write_statuses() -> None:
    target = os.environ.get("FUZZ_STATUSES")
    if target:
        with _STATUSES_LOCK:
            Path(target).write_text(json.dumps(_STATUSES, indent=1, sort_keys=True))


# CPython 3.11.7 can raise "SystemError: AST constructor recursion depth mismatch" when
# Hypothesis parses a source file to describe a lambda deep in the stack (cpython
# gh-106905); Schemathesis then reports a flaky run error. Parsing the file that holds
# Schemathesis's lambdas once, here at the top of the stack, fills Hypothesis's cache.
get_pretty_function_description(jsonschema_strategy._TYPE_CHECKS["null"])
