"""Idempotency-Key: a repeat of a POST replays the first answer byte for byte and never
does the work twice; the same key for a different request is refused."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import services as ledger
from ledger.models import Account, Settlement, Transfer
from oauth import services as identity
from tests.api.support import Api, Books, Party, balance, problem

pytestmark = pytest.mark.django_db

KEY = "order-1042-attempt"


def payment(party: Party, **fields: Any) -> dict[str, Any]:
    return {
        "source_account": party.usd.id,
        "destination_account": party.payee.id,
        "amount": 2_550,
        "currency": "USD",
        **fields,
    }


def test_a_repeat_replays_the_first_answer_byte_for_byte(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    again = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["Content-Type"] == first.headers["Content-Type"]


def test_only_the_replay_says_it_is_one(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    again = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_replay_has_its_own_request_id(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    again = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert again.headers["Request-Id"] != first.headers["Request-Id"]


def test_a_repeat_makes_one_transfer_and_holds_once(api: Api, alice: Party) -> None:
    for _ in range(3):
        api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert Transfer.objects.filter(source_id=alice.usd.id).count() == 1
    assert balance(alice.usd) == (1_000_000, 2_550, 997_450)


def test_without_a_key_each_post_is_a_new_transfer(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice)).json()
    second = api.post("/v1/transfers", payment(alice)).json()
    assert first["id"] != second["id"]
    assert balance(alice.usd) == (1_000_000, 5_100, 994_900)


def test_two_keys_make_two_transfers(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice), idempotency_key="a").json()
    second = api.post("/v1/transfers", payment(alice), idempotency_key="b").json()
    assert first["id"] != second["id"]


def test_a_replay_answers_with_the_transfer_as_it_was_then(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice, settlement="manual"), idempotency_key=KEY)
    api.post(f"/v1/transfers/{first.json()['id']}/settle")
    again = api.post("/v1/transfers", payment(alice, settlement="manual"), idempotency_key=KEY)
    assert again.json()["status"] == "pending"
    assert again.content == first.content


def test_the_same_key_with_a_different_body_is_422(api: Api, alice: Party) -> None:
    api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice, amount=2_551), idempotency_key=KEY)
    assert problem(response) == (422, "idempotency_key_reused", "Idempotency-Key")
    assert Books.now() == before


def test_the_same_key_on_another_path_is_422(api: Api, alice: Party) -> None:
    api.post("/v1/accounts", {"currency": "USD"}, idempotency_key=KEY)
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert problem(response) == (422, "idempotency_key_reused", "Idempotency-Key")
    assert Books.now() == before


def test_a_key_belongs_to_its_organization_so_charlie_may_use_the_same_string(
    api: Api, alice: Party, charlie: Party
) -> None:
    alices = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    charlies = api.using(charlie.secret).post(
        "/v1/transfers", payment(charlie), idempotency_key=KEY
    )
    assert charlies.status_code == 201
    assert "Idempotent-Replayed" not in charlies.headers
    assert charlies.json()["id"] != alices.json()["id"]
    assert balance(charlie.usd) == (1_000_000, 2_550, 997_450)


def test_charlie_replaying_alices_exact_request_gets_no_glimpse_of_it(
    api: Api, alice: Party, charlie: Party
) -> None:
    api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    response = api.using(charlie.secret).post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert problem(response) == (404, "not_found", "source_account")
    assert "Idempotent-Replayed" not in response.headers


def test_another_key_of_the_same_organization_shares_its_keys(api: Api, alice: Party) -> None:
    other = identity.api_key_create(organization=alice.organization, livemode=False).secret
    first = api.post("/v1/transfers", payment(alice), idempotency_key=KEY)
    again = api.using(other).post("/v1/transfers", payment(alice), idempotency_key=KEY)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"


def test_live_and_test_mode_keep_their_keys_apart(
    api: Api, alice: Party, alice_live_key: str
) -> None:
    api.post("/v1/accounts", {"currency": "USD"}, idempotency_key=KEY)
    live = api.using(alice_live_key).post("/v1/accounts", {"currency": "USD"}, idempotency_key=KEY)
    assert live.status_code == 201
    assert live.json()["livemode"] is True


def test_a_key_of_255_characters_is_accepted(api: Api, alice: Party) -> None:
    response = api.post("/v1/transfers", payment(alice), idempotency_key="k" * 255)
    assert response.status_code == 201


@pytest.mark.parametrize(
    "key", ["k" * 256, "k" * 10_000, ""], ids=["256-chars", "10000-chars", "empty"]
)
def test_a_key_of_the_wrong_length_is_400(api: Api, alice: Party, key: str) -> None:
    before = Books.now()
    response = api.post("/v1/transfers", payment(alice), idempotency_key=key)
    assert problem(response) == (400, "validation_error", "Idempotency-Key")
    assert Books.now() == before


def test_a_refusal_is_replayed_as_the_same_refusal(api: Api, alice: Party) -> None:
    first = api.post("/v1/transfers", payment(alice, amount=1_000_001), idempotency_key=KEY)
    assert problem(first) == (402, "insufficient_funds", "amount")
    api.post(f"/v1/test_helpers/accounts/{alice.usd.id}/fund", {"amount": 5_000})
    again = api.post("/v1/transfers", payment(alice, amount=1_000_001), idempotency_key=KEY)
    assert again.status_code == 402
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert not Transfer.objects.filter(source_id=alice.usd.id).exists()


def test_a_settle_repeated_with_its_key_is_a_replay_not_a_409(api: Api, alice: Party) -> None:
    transfer = ledger.transfer_create(
        holder=alice.holder,
        livemode=False,
        source_id=alice.usd.id,
        destination_id=alice.payee.id,
        amount=900,
        currency="USD",
        settlement=Settlement.MANUAL,
    ).transfer.id
    first = api.post(f"/v1/transfers/{transfer}/settle", {"amount": 400}, idempotency_key=KEY)
    again = api.post(f"/v1/transfers/{transfer}/settle", {"amount": 400}, idempotency_key=KEY)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == first.content
    assert balance(alice.payee) == (400, 0, 400)


def test_a_batch_repeated_with_its_key_is_made_once(api: Api, alice: Party) -> None:
    body = {"transfers": [payment(alice, amount=1), payment(alice, amount=2)]}
    first = api.post("/v1/transfer_batches", body, idempotency_key=KEY)
    again = api.post("/v1/transfer_batches", body, idempotency_key=KEY)
    assert again.content == first.content
    assert Transfer.objects.filter(source_id=alice.usd.id).count() == 2


def test_an_account_opened_with_a_key_is_opened_once(api: Api, alice: Party) -> None:
    before = Account.objects.count()
    api.post("/v1/accounts", {"currency": "USD"}, idempotency_key=KEY)
    api.post("/v1/accounts", {"currency": "USD"}, idempotency_key=KEY)
    assert Account.objects.count() == before + 1


def test_funding_with_a_key_credits_once(api: Api, alice: Party) -> None:
    for _ in range(2):
        api.post(
            f"/v1/test_helpers/accounts/{alice.payee.id}/fund", {"amount": 300}, idempotency_key=KEY
        )
    assert balance(alice.payee) == (300, 0, 300)
