"""`{{ amount|money:currency }}`: integer minor units shown the way the reader's language
writes that currency (USD 1050 → "$10.50", JPY 10000 → "¥10,000", in Chinese "US$10.50")."""

from __future__ import annotations

import copy
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from django import template
from django.conf import settings
from django.utils.translation import get_language, to_locale

from ledger import selectors as books

register = template.Library()


@register.filter
def money(amount: object, currency: object) -> str:
    """`currency` is an ISO 4217 code or a ledger Currency. Unknown input is shown as it
    came rather than failing the whole page."""
    currency = "" if currency is None else str(currency)
    if isinstance(amount, bool) or not isinstance(amount, int) or not currency:
        return "" if amount is None else f"{amount} {currency}".strip()
    exponent = books.currency_exponents().get(currency)
    locale = _locale()
    if exponent is None:
        return format_currency(Decimal(amount), currency, locale=locale)
    # The ledger's exponent, not CLDR's digits, says how many decimals the amount has:
    # the two disagree for a few currencies, and the books are what the number means.
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    shown: str = pattern.apply(
        Decimal(amount).scaleb(-exponent), locale, currency=currency, currency_digits=False
    )
    return shown


def _locale() -> Locale:
    try:
        return Locale.parse(to_locale(get_language() or settings.LANGUAGE_CODE))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(to_locale(settings.LANGUAGE_CODE))
