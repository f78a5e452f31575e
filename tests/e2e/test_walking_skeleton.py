"""One fulfillment request from the merchant to a fulfilled order, over real HTTP, a real worker and Redis."""

from __future__ import annotations

from sqlalchemy import select

from devstack.wait import wait_for
from fulfillment.models import FulfillmentOrder


def _fulfillment_order(order: dict) -> dict:
    (fo,) = order["fulfillment_orders"]
    return fo


def test_requested_fulfillment_is_accepted_shipped_and_recorded(connected_shop):
    shop = connected_shop
    order = shop.place_order([{"sku": "SKU-SKELETON", "title": "Skeleton key", "quantity": 2}])
    fo_id = _fulfillment_order(order)["id"]
    shop.set_stock("SKU-SKELETON", 10)

    shop.merchant.request_fulfillment(fo_id, message="Leave at the back door")

    def fulfilled():
        current = shop.merchant.order(order["id"])
        fo = _fulfillment_order(current)
        return current if fo["status"] == "CLOSED" and current["fulfillments"] else None

    done = wait_for(fulfilled, timeout=60, what="the fulfillment order to be fulfilled")

    # The store's side: one fulfillment with our tracking, the whole quantity, and the timeline tells the story.
    (fulfillment,) = done["fulfillments"]
    assert fulfillment["tracking_info"][0]["number"].startswith("SIM")
    assert sum(item["quantity"] for item in fulfillment["line_items"]) == 2
    assert done["display_fulfillment_status"] == "FULFILLED"
    timeline = " | ".join(entry["message"] for entry in done["timeline"])
    assert "expected to ship by" in timeline
    assert fulfillment["tracking_info"][0]["number"] in timeline

    # Our side: shipped (committed just after the store answered), every state change logged, the note kept.
    wait_for(lambda: shop.record(fo_id).state == "shipped", what="our record to be shipped")
    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        record = session.scalar(select(FulfillmentOrder).where(FulfillmentOrder.store_id == fo_id))
        states = [c.to_state for c in record.state_changes if c.from_state != c.to_state]
        assert states == ["requested", "accepted", "picked", "packed", "shipped"]
        assert [r.message for r in record.merchant_requests] == ["Leave at the back door"]
        assert [p.state for p in record.packages] == ["shipped"]
