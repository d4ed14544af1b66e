"""The sections of `make bench`, in the order they run. A section is one module with
`run(context) -> SectionResult`; add yours to SECTIONS."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context
from bench.report import SectionResult
from bench.sections import api, ledger, webhooks

SECTIONS: dict[str, Callable[[Context], SectionResult]] = {
    "ledger": ledger.run,
    "api": api.run,
    "webhooks": webhooks.run,
}
