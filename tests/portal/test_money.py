"""Amounts are integers of minor units; the portal shows them the way the reader's
language writes each currency, with as many decimals as the ledger gives it."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from developers.templatetags.money import money

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "amount", "currency", "shown"),
    [
        ("en", 1050, "USD", "$10.50"),
        ("en", 10000, "JPY", "¥10,000"),
        ("en", 1234, "KWD", "KWD1.234"),
        ("en", 0, "USD", "$0.00"),
        ("en", -250, "EUR", "-€2.50"),
        ("en", 123456789, "USD", "$1,234,567.89"),
        ("zh-hans", 1050, "USD", "US$10.50"),
        ("zh-hans", 10000, "JPY", "JP¥10,000"),
        ("zh-hans", 1234, "KWD", "KWD1.234"),
        ("zh-hans", 1050, "CNY", "¥10.50"),
    ],
)
def test_minor_units_are_shown_in_the_currency_s_own_format(
    language: str, amount: int, currency: str, shown: str
) -> None:
    with translation.override(language):
        assert money(amount, currency) == shown


def test_the_filter_is_used_by_name_in_templates() -> None:
    template = Template("{% load money %}{{ amount|money:currency }}")
    with translation.override("en"):
        assert template.render(Context({"amount": 2500, "currency": "USD"})) == "$25.00"


def test_the_ledger_s_exponent_decides_the_decimals_not_babel_s() -> None:
    # CLDR rounds Colombian pesos to whole units for display; ISO 4217 and the ledger
    # give them two decimals, and a cent must not vanish from the screen.
    with translation.override("en"):
        assert money(12345, "COP").endswith("123.45")


def test_a_ledger_currency_object_works_like_its_code() -> None:
    from ledger.models import Currency

    with translation.override("en"):
        assert money(1050, Currency.objects.get(code="USD")) == "$10.50"


def test_no_amount_shows_nothing_and_odd_input_is_shown_as_it_came() -> None:
    assert money(None, "USD") == ""
    assert money("abc", "USD") == "abc USD"
    assert money(True, "USD") == "True USD"


def test_a_currency_the_ledger_does_not_know_still_renders() -> None:
    with translation.override("en"):
        assert money(5, "XXX") != ""
