"""Opaque, prefixed identifiers (`acct_…`, `tr_…`): a ULID in lower case.

ULIDs sort by creation time, which keeps B-tree inserts local and gives cursor
pagination a stable order, and carry 80 random bits, so they cannot be guessed.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.deconstruct import deconstructible
from ulid import ULID

ULID_LENGTH = 26


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


@deconstructible
class IdFactory:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


class PrefixedIdField(models.CharField[str, str]):
    """A primary key like `org_01jf…`, generated in Python when the object is built."""

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs["max_length"] = len(prefix) + 1 + ULID_LENGTH
        kwargs["default"] = IdFactory(prefix)
        kwargs.setdefault("primary_key", True)
        kwargs["editable"] = False
        super().__init__(**kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        for generated in ("max_length", "default", "editable"):
            kwargs.pop(generated, None)
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
