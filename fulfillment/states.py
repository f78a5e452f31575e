"""Our view of a fulfillment order: the states, the one table of allowed transitions, and the log.

Every transition goes through `transition()`, which appends a StateChange in the same session, so the change
and its record are committed together or not at all.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from fulfillment.models import FulfillmentOrder, StateChange


class State(StrEnum):
    REQUESTED = "requested"  # the store asked us; not yet decided
    ACCEPTED = "accepted"  # accepted on the store, stock reserved
    PICKED = "picked"
    PACKED = "packed"  # packages exist, with tracking numbers, none shipped yet
    PARTIALLY_SHIPPED = "partially_shipped"
    CANCELLATION_REQUESTED = "cancellation_requested"
    ON_HOLD = "on_hold"
    # Final states.
    SHIPPED = "shipped"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # we accepted the merchant's cancellation request
    WITHDRAWN = "withdrawn"  # the merchant withdrew the request before we accepted it
    RESET = "reset"  # the merchant reset it to unfulfilled after we accepted
    MOVED = "moved"  # reassigned to another location
    FULFILLED_ELSEWHERE = "fulfilled_elsewhere"
    CLOSED = "closed"  # we closed it unable to finish (INCOMPLETE on the store)


class PackageState(StrEnum):
    """Where one package stands: `shipping` is written before the store is asked to create its fulfillment, so
    a lost answer leaves a mark that has the next step look on the store before asking again."""

    PACKED = "packed"
    SHIPPING = "shipping"
    SHIPPED = "shipped"


class Cause(StrEnum):
    CALLBACK = "callback"
    WEBHOOK = "webhook"
    POLL = "poll"
    OPERATOR = "operator"
    WORKER = "worker"


FINAL = frozenset(
    {
        State.SHIPPED,
        State.REJECTED,
        State.CANCELLED,
        State.WITHDRAWN,
        State.RESET,
        State.MOVED,
        State.FULFILLED_ELSEWHERE,
        State.CLOSED,
    }
)
WORKING = frozenset({State.ACCEPTED, State.PICKED, State.PACKED, State.PARTIALLY_SHIPPED})
# Where the merchant's hand can take a fulfillment order that is not final.
_TAKEN_BACK = {State.WITHDRAWN, State.RESET, State.MOVED, State.FULFILLED_ELSEWHERE, State.CLOSED}

TRANSITIONS: dict[State, frozenset[State]] = {
    State.REQUESTED: frozenset(
        {
            State.ACCEPTED,
            State.REJECTED,
            State.ON_HOLD,
            State.WITHDRAWN,
            State.MOVED,
            State.FULFILLED_ELSEWHERE,
            State.RESET,
            State.CANCELLATION_REQUESTED,
            State.CLOSED,
        }
    ),
    State.ACCEPTED: frozenset({State.PICKED, State.CANCELLATION_REQUESTED, State.ON_HOLD, State.CLOSED} | _TAKEN_BACK),
    State.PICKED: frozenset({State.PACKED, State.CANCELLATION_REQUESTED, State.ON_HOLD, State.CLOSED} | _TAKEN_BACK),
    State.PACKED: frozenset(
        {State.PARTIALLY_SHIPPED, State.SHIPPED, State.CANCELLATION_REQUESTED, State.ON_HOLD} | _TAKEN_BACK
    ),
    State.PARTIALLY_SHIPPED: frozenset({State.SHIPPED, State.CANCELLATION_REQUESTED, State.ON_HOLD} | _TAKEN_BACK),
    State.CANCELLATION_REQUESTED: frozenset(
        {State.CANCELLED, State.ACCEPTED, State.PICKED, State.PACKED, State.PARTIALLY_SHIPPED, State.SHIPPED}
        | _TAKEN_BACK
    ),
    State.ON_HOLD: frozenset(
        {
            State.REQUESTED,
            State.ACCEPTED,
            State.PICKED,
            State.PACKED,
            State.PARTIALLY_SHIPPED,
            State.CANCELLATION_REQUESTED,
        }
        | _TAKEN_BACK
    ),
}
for _final in FINAL:
    TRANSITIONS[_final] = frozenset()


class InvalidTransition(Exception):
    def __init__(self, current: str | None, target: str):
        super().__init__(f"cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: State | str | None, target: State | str) -> bool:
    if current is None:
        return State(target) in (State.REQUESTED, State.ACCEPTED)
    return State(target) in TRANSITIONS[State(current)]


def transition(
    session: Session, record: FulfillmentOrder, target: State, *, cause: Cause, detail: str = ""
) -> StateChange:
    """Move `record` to `target` and log it; raises InvalidTransition when the table forbids it."""
    current = record.state
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    record.state = str(target)
    return _log(session, record, current, cause, detail)


def record_event(session: Session, record: FulfillmentOrder, *, cause: Cause, detail: str) -> StateChange:
    """Log something that happened without a state change (a refused cancellation, a reread, a note)."""
    return _log(session, record, record.state, cause, detail)


def _log(session: Session, record: FulfillmentOrder, from_state: str | None, cause: Cause, detail: str) -> StateChange:
    # Joined to the record from the change's side: a log already loaded gets the change at its end, one not loaded
    # is not read from the database just to add to it (it has the change when it is read).
    change = StateChange(
        fulfillment_order=record, from_state=from_state, to_state=record.state, cause=str(cause), detail=detail[:2000]
    )
    session.add(change)
    return change


def is_final(state: State | str) -> bool:
    return State(state) in FINAL
