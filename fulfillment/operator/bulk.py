"""Deciding many requests under review at once, from a page of the queue.

Each fulfillment order goes through the one-order action (`actions.accept` / `actions.reject`), so each gets its
own step: its own re-read on the store, its own transaction, its own log line. One that cannot be decided, or that
fails, is reported and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sqlalchemy import select

from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder
from fulfillment.operator import actions
from fulfillment.operator.actions import NotActionable
from fulfillment.operator.forms import REJECTION_REASONS, InvalidInput
from fulfillment.store.errors import StoreError

log = logging.getLogger("fulfillment.operator")

# Taken around each fulfillment order's action: the web passes the lock a worker's step takes (and turns a busy
# lock into NotActionable).
Guard = Callable[[int], AbstractContextManager[object]]


@dataclass(frozen=True)
class Outcome:
    """What became of one fulfillment order of a bulk decision, in the operator's words."""

    record_id: int
    name: str  # the order's name (or the store's id), "" for an id we do not know
    done: bool
    message: str


def decide(
    ctx: Context,
    decision: str,
    record_ids: Sequence[int],
    operator_email: str,
    *,
    reason: str = "",
    message: str = "",
    guard: Guard | None = None,
) -> list[Outcome]:
    """Accept (`decision` "accept") or reject with `reason` and `message` each fulfillment order, one step each;
    one outcome per id, in the order given."""
    guard = guard or (lambda _record_id: nullcontext())
    names = _names(ctx, record_ids)
    outcomes = []
    for record_id in record_ids:
        name = names.get(record_id, "")
        try:
            with guard(record_id):
                if decision == "accept":
                    actions.accept(ctx, record_id, operator_email, message or None)
                    text = "accepted; stock reserved: pack it from its page"
                else:
                    actions.reject(ctx, record_id, reason, message, (), operator_email)
                    text = f"rejected ({REJECTION_REASONS[reason]})"
        except NotActionable as exc:
            outcome = Outcome(record_id, name, False, exc.reason)
        except InvalidInput as exc:
            outcome = Outcome(record_id, name, False, "; ".join(exc.problems))
        except StoreError as exc:
            log.warning("bulk_decision_store_error fulfillment_order=%s error=%s", record_id, exc)
            outcome = Outcome(record_id, name, False, f"the store did not take it: {exc}")
        except Exception:
            # One order's failure must not stop the rest: it is logged whole and reported, and the others go on.
            log.exception("bulk_decision_failed fulfillment_order=%s decision=%s", record_id, decision)
            outcome = Outcome(record_id, name, False, "failed; the error is in the log")
        else:
            outcome = Outcome(record_id, name, True, text)
        outcomes.append(outcome)
    log.info(
        "bulk_decision operator=%s decision=%s fulfillment_orders=%s done=%s",
        operator_email,
        decision,
        len(outcomes),
        sum(o.done for o in outcomes),
    )
    return outcomes


def _names(ctx: Context, record_ids: Sequence[int]) -> dict[int, str]:
    with ctx.db.transaction() as session:
        rows = session.execute(
            select(FulfillmentOrder.id, FulfillmentOrder.order_name, FulfillmentOrder.store_id).where(
                FulfillmentOrder.id.in_(list(record_ids))
            )
        )
        return {record_id: order_name or store_id for record_id, order_name, store_id in rows}
