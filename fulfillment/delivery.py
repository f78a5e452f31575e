"""Deliveries both ways: the carrier's delivery events posted to the store after a package leaves (row N11), and
the store's deliveries to us (callbacks, webhooks), kept for de-duplication only as long as the store may repeat
them.

The simulated carrier walks each package through in transit, out for delivery and delivered; an address it
cannot serve (postcode 00000) takes the failure path instead. A real carrier integration would call
`post_delivery_event` with the statuses it reports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from fulfillment.context import Context
from fulfillment.models import Delivery, Package
from fulfillment.states import Cause, record_event
from fulfillment.step import DONE, Next
from fulfillment.store import operations as ops
from fulfillment.store.errors import NotFound, UserErrors

DELIVERED_PATH = ("IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
FAILED_PATH = ("IN_TRANSIT", "ATTEMPTED_DELIVERY", "FAILURE")
MESSAGES = {
    "IN_TRANSIT": "In transit with the carrier.",
    "OUT_FOR_DELIVERY": "Out for delivery.",
    "ATTEMPTED_DELIVERY": "Delivery attempted; nobody could receive the parcel.",
    "DELIVERED": "Delivered.",
    "FAILURE": "Delivery failed: the carrier could not deliver to this address; returning to the warehouse.",
}


def carrier_path(package: Package) -> tuple[str, ...]:
    destination = package.fulfillment_order.destination or {}
    return FAILED_PATH if str(destination.get("zip", "")).strip() == "00000" else DELIVERED_PATH


def post_delivery_event(ctx: Context, package_id: int, status: str | None = None) -> Next:
    """Post the package's next carrier status (or `status`), and say when the one after is due."""
    with ctx.db.transaction() as session:
        package = session.get(Package, package_id)
        if package is None or package.store_fulfillment_id is None:
            return DONE
        path = carrier_path(package)
        if status is None:
            done = path.index(package.delivery_status) + 1 if package.delivery_status in path else 0
            if done >= len(path):
                return DONE
            status = path[done]
        record = package.fulfillment_order
        try:
            ops.create_fulfillment_event(
                ctx.store_for(record.shop),
                package.store_fulfillment_id,
                status=status,
                message=MESSAGES.get(status),
                happened_at=ctx.clock(),
            )
        except (NotFound, UserErrors) as exc:
            # The store no longer has the fulfillment (it answers an unknown one with a userError, as recorded;
            # a top-level RESOURCE_NOT_FOUND would mean the same): later events would be refused too. A cancelled
            # fulfillment still takes events, so this is not how a cancellation shows.
            record_event(
                session, record, cause=Cause.WORKER, detail=f"package {package.sequence}: {status} refused: {exc}"
            )
            return DONE
        package.delivery_status = status
        record_event(session, record, cause=Cause.WORKER, detail=f"package {package.sequence}: {status}")
        return DONE if status in (path[-1], "DELIVERED", "FAILURE") else Next(ctx.config.delivery_event_delay_s)


# The store retries a webhook it could not deliver for 48 hours (19 tries), and a callback is not retried
# longer: a repeat can come no later than this after the first delivery, so a row older than it dedupes nothing.
# An hour more covers clocks and a repeat already in flight when the window closed.
RETRY_WINDOW = timedelta(hours=48)
KEEP_DELIVERIES = RETRY_WINDOW + timedelta(hours=1)
PRUNE_BATCH = 5000


def prune_deliveries(ctx: Context, now: datetime | None = None) -> int:
    """Forget the store's deliveries older than its retry window; returns how many went. In batches, so that a
    backlog of old rows never holds a long transaction (through the `received_at` index)."""
    before = (now or ctx.clock()) - KEEP_DELIVERIES
    pruned = 0
    while True:
        with ctx.db.transaction() as session:
            ids = session.scalars(select(Delivery.id).where(Delivery.received_at < before).limit(PRUNE_BATCH)).all()
            if ids:
                session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
        pruned += len(ids)
        if len(ids) < PRUNE_BATCH:
            return pruned
