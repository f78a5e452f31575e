"""One store fault at a time, over real HTTP: what each must not cost us (the chaos test mixes them all)."""

from __future__ import annotations

from collections import Counter

from devstack.wait import wait_for


def shipped_once(shop, order_id: str, timeout: float = 120) -> dict:
    """Wait for the order to be fulfilled on the store's side and our record to be shipped; return the order."""
    order = wait_for(
        lambda: (o := shop.merchant.order(order_id))["display_fulfillment_status"] == "FULFILLED" and o,
        timeout=timeout,
        what=f"order {order_id} to be fulfilled",
    )
    (fo,) = order["fulfillment_orders"]
    wait_for(
        lambda: (r := shop.record(fo["id"])) is not None and r.state == "shipped",
        timeout=60,
        what="our record to be shipped",
    )
    return shop.merchant.order(order_id)


def shipped_per_line_item(order: dict) -> Counter:
    shipped: Counter = Counter()
    for fulfillment in order["fulfillments"]:
        for item in fulfillment["line_items"]:
            shipped[item["line_item_id"]] += item["quantity"]
    return shipped


def test_a_request_whose_callback_never_arrives_is_found_by_the_sweep(connected_shop):
    shop = connected_shop
    shop.set_stock("REL-DROP", 5)
    shop.merchant.set_faults(drop_rate=1.0)
    order = shop.place_order([{"sku": "REL-DROP", "title": "Lamp", "quantity": 1}])
    (fo,) = order["fulfillment_orders"]
    shop.merchant.request_fulfillment(fo["id"])

    done = shipped_once(shop, order["id"])
    assert len(done["fulfillments"]) == 1
    sent = shop.merchant.state()["callbacks_sent"]
    assert sent and all(c.get("fault") == "dropped" for c in sent), sent


def test_store_errors_timeouts_and_lost_answers_are_retried_and_ship_each_order_once(connected_shop):
    shop = connected_shop
    shop.set_stock("REL-FAULT", 100)
    # About one request in four fails one way or another; retries back off exponentially, so give it time.
    shop.merchant.set_faults(error_rate=0.1, timeout_rate=0.03, timeout_s=11, lost_response_rate=0.1, seed=5)
    orders = []
    for quantity in (1, 3, 6):  # six units ship in two packages
        order = shop.place_order([{"sku": "REL-FAULT", "title": "Vase", "quantity": quantity}])
        (fo,) = order["fulfillment_orders"]
        shop.merchant.request_fulfillment(fo["id"])
        orders.append((order, quantity))

    for order, quantity in orders:
        done = shipped_once(shop, order["id"], timeout=300)
        (line_item,) = done["line_items"]
        assert shipped_per_line_item(done) == {line_item["id"]: quantity}
        numbers = [t["number"] for f in done["fulfillments"] for t in f["tracking_info"]]
        assert len(numbers) == len(set(numbers)) == (2 if quantity > 4 else 1)
    assert shop.available("REL-FAULT") == 90
