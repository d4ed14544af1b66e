"""Typed ledger errors. Each has a stable `code` that the API passes on to clients."""

from __future__ import annotations


class LedgerError(Exception):
    code = "ledger_error"
    param: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        if param is not None:
            self.param = param


class InvalidAmount(LedgerError):
    code = "invalid_amount"
    param = "amount"


class UnknownCurrency(LedgerError):
    code = "unknown_currency"
    param = "currency"


class InvalidSettlement(LedgerError):
    code = "validation_error"
    param = "settlement"


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"
    param = "currency"


class SameAccount(LedgerError):
    code = "same_account"
    param = "destination_account"


class AccountNotFound(LedgerError):
    code = "not_found"


class TransferNotFound(LedgerError):
    code = "not_found"


class AccountFrozen(LedgerError):
    code = "account_frozen"


class AccountClosed(LedgerError):
    code = "account_closed"


class AccountNotEmpty(LedgerError):
    code = "account_not_empty"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    param = "amount"


class BalanceOverflow(LedgerError):
    code = "balance_overflow"
    param = "amount"


class TransferNotPending(LedgerError):
    code = "transfer_not_pending"


class TransferNotSettled(LedgerError):
    code = "transfer_not_settled"


class AmountExceedsHold(LedgerError):
    code = "amount_exceeds_hold"
    param = "amount"


class ClientReferenceReused(LedgerError):
    """The client reference names an existing transfer with different fields
    (TigerBeetle's `exists_with_different_*`)."""

    code = "client_reference_reused"
    param = "client_reference"


class BatchTooLarge(LedgerError):
    code = "batch_too_large"


class BatchItemError(LedgerError):
    """One item of a batch failed, so none was applied."""

    def __init__(self, index: int, error: LedgerError) -> None:
        super().__init__(f"transfer {index}: {error}", param=error.param)
        self.index = index
        self.error = error
        self.code = error.code
