"""What can go wrong when talking to a store, as named exceptions callers can act on.

Each kind implies a different reaction: `Throttled` and `StoreUnavailable` are transient (retry later, and for
a mutation that `maybe_applied`, re-read the store before retrying); `Unauthorized` needs the merchant (token
revoked, scope missing); `NotFound` and `UserErrors` are answers about the store's state; `GraphQLQueryError`
is a bug in our document and retrying will not help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class StoreError(Exception):
    """Base class of every failure to get an answer from a store."""


class Throttled(StoreError):
    """The shop's rate-limit bucket stayed too low for longer than we were willing to wait.

    Nothing was executed, so retrying (even a mutation) is safe after `retry_after` seconds.
    """

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message or f"throttled by the store; retry after {retry_after:.2f}s")


class StoreUnavailable(StoreError):
    """The store could not be reached or failed (5xx, timeout, connection error).

    `maybe_applied` is True when the document was a mutation that may have reached the store: the caller must
    check the store's state before sending a non-idempotent mutation (e.g. `fulfillmentCreate`) again.
    """

    def __init__(self, message: str, *, maybe_applied: bool) -> None:
        self.maybe_applied = maybe_applied
        super().__init__(message)


class Unauthorized(StoreError):
    """The access token was refused (401/403) or lacks a scope the operation needs."""


class NotFound(StoreError):
    """The store answered with `RESOURCE_NOT_FOUND`: an id we sent does not (or no longer) exist."""


class GraphQLQueryError(StoreError):
    """The store rejected the document itself: a bug on our side, not retryable."""

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        self.errors = list(errors)
        super().__init__(message)


@dataclass(frozen=True)
class UserError:
    """One business error from a mutation's `userErrors` (e.g. an invalid state transition)."""

    field: tuple[str, ...] | None
    message: str
    code: str | None = None


class UserErrors(StoreError):
    """A mutation was refused with `userErrors`; nothing was changed."""

    def __init__(self, errors: Sequence[UserError], operation: str | None = None) -> None:
        self.errors = list(errors)
        self.operation = operation
        summary = "; ".join(f"{'.'.join(e.field)}: {e.message}" if e.field else e.message for e in self.errors)
        super().__init__(f"{operation or 'mutation'} refused: {summary}")


__all__ = [
    "GraphQLQueryError",
    "NotFound",
    "StoreError",
    "StoreUnavailable",
    "Throttled",
    "Unauthorized",
    "UserError",
    "UserErrors",
]
