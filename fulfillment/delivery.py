"""The carrier's side after a package leaves: delivery events posted to the store (row N11).

The simulated carrier walks each package through in transit, out for delivery and delivered; an address it
cannot serve (postcode 00000) takes the failure path instead. A real carrier integration would call
`post_delivery_event` with the statuses it reports.
"""

from __future__ import annotations

from fulfillment.context import Context
from fulfillment.models import Package
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
