"""Strict input: amounts are JSON integers, unknown fields are refused, strings never
carry NUL, and JSON bodies are bounded in depth."""

from __future__ import annotations

import codecs
import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from iso4217 import Currency as Iso4217
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from ledger.models import MAX_AMOUNT
from ledger.selectors import currency_exponents

MAX_JSON_DEPTH = 20
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500


class StrictJSONParser(JSONParser):
    """Refuses bodies nested deeper than MAX_JSON_DEPTH (a cheap denial of service
    otherwise), invalid UTF-8, NaN/Infinity, which are not JSON, and a key given twice."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("the body is not valid UTF-8") from exc
        if _nesting(text) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(
                text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicates
            )
        except ValueError as exc:
            raise ParseError(str(exc)) from exc


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Which of two values of one key a parser keeps is its own choice: a proxy, a log
    or a check that read the other would not see what the API acted on."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _nesting(text: str) -> int:
    """The deepest bracket nesting, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@extend_schema_field(
    {
        "type": "integer",
        "format": "int64",
        "minimum": 1,
        "maximum": MAX_AMOUNT,
        "description": "Minor units of the currency: 1050 is 10.50 USD, 1050 is ¥1050.",
    }
)
class AmountField(serializers.Field[int, int, int, Any]):
    """A positive integer of minor units: 1050 is 10.50 USD. Floats, strings,
    booleans, zero, negative and > 2^63-1 amounts are refused as `invalid_amount`."""

    default_error_messages = {
        "invalid_amount": "amount must be a positive integer number of minor units "
        "(1050 is 10.50 USD), at most 9223372036854775807",
    }

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # `null` is one more thing that is not an amount, not a separate error.
        if data is None:
            self.fail("invalid_amount")
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int) or not 0 < data <= MAX_AMOUNT:
            self.fail("invalid_amount")
        return int(data)

    def to_representation(self, value: int) -> int:
        return value


def supported_currencies() -> list[str]:
    """The ISO 4217 codes the books hold (ledger migration 0002 loads the same list from the
    same package): what the schema offers as `currency`."""
    return sorted(currency.code for currency in Iso4217 if currency.exponent is not None)


@extend_schema_field(
    {
        "type": "string",
        "enum": supported_currencies(),
        "description": "An ISO 4217 code in upper case: USD, EUR, JPY...",
    }
)
class CurrencyField(serializers.CharField):
    default_error_messages = {"invalid_currency": "not an ISO 4217 currency code we support"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in currency_exponents():
            self.fail("invalid_currency")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string, never a number turned into one, taken as sent: not trimmed (DRF
    trims by default, which changed what a client stored and refused a string of
    whitespace as blank though the schema allows it; found by `make fuzz`). DRF's
    CharField already refuses NUL characters, which PostgreSQL cannot store."""

    default_error_messages = {"not_a_string": "must be a string"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_METADATA_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": 40, "pattern": "^[^\\u0000]*$"},
        "additionalProperties": {
            "type": "string",
            "maxLength": MAX_METADATA_VALUE,
            "pattern": "^[^\\u0000]*$",
        },
        "description": f"Up to {MAX_METADATA_KEYS} string keys (1 to 40 characters) and values "
        f"(up to {MAX_METADATA_VALUE}), for your own use.",
    }
)
class MetadataField(serializers.DictField):
    """Up to 50 string keys and values, of 40 and 500 characters, without NUL."""

    default_error_messages = {"not_a_dict": "must be an object of strings"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=MAX_METADATA_VALUE, allow_blank=True))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        value: dict[str, str] = super().to_internal_value(data)
        if len(value) > MAX_METADATA_KEYS:
            raise serializers.ValidationError(f"at most {MAX_METADATA_KEYS} keys")
        for key in value:
            if len(key) > 40 or "\x00" in key or not key or not _encodable(key):
                raise serializers.ValidationError(
                    "keys are 1 to 40 characters of valid Unicode, without NUL"
                )
        return value


def _encodable(text: str) -> bool:
    """False for a lone surrogate (a JSON "\\ud800"), which no database can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses fields it does not know, instead of ignoring them: a misspelt field, or
    an attempt to set `balance`, `status` or `livemode`, is an error, not a no-op."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["the body must be a JSON object"]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [serializers.ErrorDetail("unknown field", code="unknown_field")]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)
