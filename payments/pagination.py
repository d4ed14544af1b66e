"""Cursor pagination: `?limit=` 1-100 (default 20) and an opaque `?cursor=`.

Pages are cut by key (`id < cursor`), never by OFFSET, so they cost the same at any
depth and stay stable while new rows are inserted: ids are time-ordered, so new rows
sort before the first page and never shift the pages after it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import QuerySet
from rest_framework.request import Request

from payments.errors import ApiError

ID_PATTERN = re.compile(r"[A-Za-z0-9_]{1,64}")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: Any  # the key of the last item of the previous page, or None


def page_request(request: Request, *, key_type: type = str) -> PageRequest:
    unknown = set(request.query_params) - {"limit", "cursor"}
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError(400, "validation_error", f"unknown query parameter {name!r}", param=name)
    raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ApiError(
            400,
            "validation_error",
            f"limit must be an integer from 1 to {MAX_LIMIT}",
            param="limit",
        )
    cursor = request.query_params.get("cursor")
    after = None
    if cursor:
        after = _decode(cursor)
        if (
            not isinstance(after, key_type)
            or isinstance(after, bool)
            or (isinstance(after, str) and not ID_PATTERN.fullmatch(after))
        ):
            raise ApiError(400, "validation_error", "cursor is not valid", param="cursor")
    return PageRequest(limit=int(raw_limit), after=after)


def page(
    items: Sequence[T], page: PageRequest, *, key: Callable[[T], Any], render: Callable[[T], Any]
) -> dict[str, Any]:
    """`items` holds up to limit + 1 rows, newest first: the extra one says there is more."""
    has_more = len(items) > page.limit
    shown = list(items[: page.limit])
    return {
        "object": "list",
        "data": [render(item) for item in shown],
        "has_more": has_more,
        "next_cursor": _encode(key(shown[-1])) if has_more and shown else None,
    }


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise ApiError(400, "validation_error", "cursor is not valid", param="cursor") from None


def newest_first(
    request: Request, query: QuerySet[Any], *, render: Callable[[Any], Any]
) -> dict[str, Any]:
    """A page of `query`, newest first, cut by id (ids are time-ordered)."""
    wanted = page_request(request)
    if wanted.after:
        query = query.filter(id__lt=wanted.after)
    items = list(query.order_by("-id")[: wanted.limit + 1])
    return page(items, wanted, key=lambda item: item.id, render=render)
