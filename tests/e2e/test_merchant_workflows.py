"""Every merchant workflow of the help pages (rows L1-L3, N1-N11), driven on the sandbox store as a merchant
would, with the real web app, Celery worker and Redis. Each test checks the store's side and ours."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest
import requests

from devstack.merchant import MerchantActionRefused
from devstack.wait import wait_for
from tests.conftest import API_SECRET

LEGACY = {"workflow": "legacy"}


def only_fo(order: dict) -> dict:
    (fo,) = order["fulfillment_orders"]
    return fo


def fo_by_id(order: dict, fo_id: str) -> dict:
    return next(fo for fo in order["fulfillment_orders"] if fo["id"] == fo_id)


def timeline_text(order: dict) -> str:
    return "\n".join(entry["message"] or "" for entry in order["timeline"])


def wait_order(shop, order_id: str, check, what: str, timeout: float = 60) -> dict:
    def probe():
        order = shop.merchant.order(order_id)
        return order if check(order) else None

    return wait_for(probe, timeout=timeout, what=what)


def wait_state(shop, fo_id: str, states: set[str], timeout: float = 60):
    return wait_for(
        lambda: (r := shop.record(fo_id)) is not None and r.state in states and r,
        timeout=timeout,
        what=f"our record of {fo_id} to reach {states}",
    )


def fulfilled(order: dict) -> bool:
    return order["display_fulfillment_status"] == "FULFILLED"


def shipped_quantity(order: dict) -> int:
    return sum(item["quantity"] for f in order["fulfillments"] for item in f["line_items"])


def signed_get(shop, path: str, params: list[tuple[str, str]]) -> requests.Response:
    query = urlencode(params)
    signature = base64.b64encode(hmac.new(API_SECRET.encode(), query.encode(), hashlib.sha256).digest()).decode()
    return requests.get(
        f"{shop.system.app_url}{path}?{query}", headers={"X-Shopify-Hmac-Sha256": signature}, timeout=10
    )


# --- legacy workflow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("connected_shop", [LEGACY], indirect=True)
def test_l1_legacy_request_is_taken_without_accept_and_shipped(connected_shop):
    shop = connected_shop
    shop.set_stock("LEG-1", 5)
    order = shop.place_order([{"sku": "LEG-1", "title": "Legacy lamp", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)

    done = wait_order(shop, order["id"], fulfilled, "the legacy order to ship")
    assert shipped_quantity(done) == 1
    record = wait_state(shop, fo_id, {"shipped"})
    first = record.state_changes[0]
    assert (first.from_state, first.to_state) == (None, "accepted")
    assert "expected to ship by" not in timeline_text(done)  # no accept step in the legacy flow


@pytest.mark.parametrize("connected_shop", [LEGACY], indirect=True)
def test_l2_legacy_progress_is_reported_to_the_store(connected_shop):
    shop = connected_shop
    shop.set_stock("LEG-2", 5)
    order = shop.place_order([{"sku": "LEG-2", "title": "Legacy vase", "quantity": 2}])
    shop.merchant.request_fulfillment(only_fo(order)["id"])

    done = wait_order(shop, order["id"], fulfilled, "the legacy order to ship")
    text = timeline_text(done)
    assert "Picking started at the warehouse." in text
    assert "Packed in 1 package(s)" in text
    assert done["fulfillments"][0]["tracking_info"][0]["number"] in text


@pytest.mark.parametrize("connected_shop", [LEGACY], indirect=True)
def test_l3_legacy_cancellation_goes_through_the_warehouse_not_the_store(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=60, pack_delay_s=60)
    shop.set_stock("LEG-3", 5)
    order = shop.place_order([{"sku": "LEG-3", "title": "Legacy rug", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    record = wait_state(shop, fo_id, {"accepted", "picked"})
    assert shop.available("LEG-3") == 4

    with pytest.raises(MerchantActionRefused):
        shop.merchant.request_cancellation(fo_id, "Customer changed their mind")

    response = requests.post(
        f"{shop.system.app_url}/api/fulfillment_orders/{record.id}/cancel",
        json={"message": "Customer changed their mind"},
        headers={"Authorization": "Bearer test-operator-token"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert shop.record(fo_id).state == "closed"
    assert shop.available("LEG-3") == 5
    after = shop.merchant.order(order["id"])
    assert fo_by_id(after, fo_id)["status"] == "INCOMPLETE"
    assert after["fulfillments"] == []


def test_l3_warehouse_cancellation_refused_once_shipped_names_the_items(connected_shop):
    shop = connected_shop
    shop.set_stock("LEG-4", 5)
    order = shop.place_order([{"sku": "LEG-4", "title": "Lantern", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    record = wait_state(shop, fo_id, {"shipped"})
    response = requests.post(
        f"{shop.system.app_url}/api/fulfillment_orders/{record.id}/cancel",
        headers={"Authorization": "Bearer test-operator-token"},
        timeout=30,
    )
    assert response.status_code == 409
    assert "1 x LEG-4" in response.json()["reason"]


# --- current workflow ------------------------------------------------------------------------------------


def test_n1_status_follows_progress_from_requested_to_accepted(connected_shop):
    shop = connected_shop
    shop.configure(review_requests=True)
    shop.set_stock("N1", 5)
    order = shop.place_order([{"sku": "N1", "title": "Notebook", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"requested"})
    submitted = shop.merchant.order(order["id"])
    assert (only_fo(submitted)["status"], only_fo(submitted)["request_status"]) == ("OPEN", "SUBMITTED")
    assert submitted["display_fulfillment_status"] in ("IN_PROGRESS", "UNFULFILLED", "PENDING_FULFILLMENT")

    shop.configure(review_requests=False, pick_delay_s=60)
    accepted = wait_order(
        shop, order["id"], lambda o: only_fo(o)["request_status"] == "ACCEPTED", "the request to be accepted"
    )
    assert only_fo(accepted)["status"] == "IN_PROGRESS"
    assert accepted["display_fulfillment_status"] == "IN_PROGRESS"
    wait_state(shop, fo_id, {"accepted"})


def test_n2_timeline_carries_every_message_from_the_service(connected_shop):
    shop = connected_shop
    shop.set_stock("N2", 5)
    order = shop.place_order([{"sku": "N2", "title": "Teapot", "quantity": 1}])
    shop.merchant.request_fulfillment(only_fo(order)["id"], message="Fragile")
    done = wait_order(
        shop,
        order["id"],
        lambda o: "Delivered." in timeline_text(o),
        "accept, shipping and delivery messages in the timeline",
    )
    text = timeline_text(done)
    number = done["fulfillments"][0]["tracking_info"][0]["number"]
    for expected in ("expected to ship by", number, "In transit", "Out for delivery", "Delivered."):
        assert expected in text, expected


def test_n3_merchant_notes_reach_the_warehouse(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=60)
    shop.set_stock("N3", 5)
    order = shop.place_order([{"sku": "N3", "title": "Kettle", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id, message="Ring the bell twice")
    wait_state(shop, fo_id, {"accepted"})
    shop.merchant.request_cancellation(fo_id, message="Duplicate order, please stop")
    record = wait_state(shop, fo_id, {"cancelled"})
    notes = {(r.kind, r.message) for r in record.merchant_requests}
    assert ("FULFILLMENT_REQUEST", "Ring the bell twice") in notes
    assert ("CANCELLATION_REQUEST", "Duplicate order, please stop") in notes
    assert any("Duplicate order, please stop" in c.detail for c in record.state_changes)


def test_n4_out_of_stock_is_rejected_per_line_item_and_order_returns_to_unfulfilled(connected_shop):
    shop = connected_shop
    shop.set_stock("N4-OK", 5)
    shop.set_stock("N4-NONE", 0)
    order = shop.place_order(
        [
            {"sku": "N4-OK", "title": "Available", "quantity": 1},
            {"sku": "N4-NONE", "title": "Sold out", "quantity": 2},
        ]
    )
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    done = wait_order(
        shop, order["id"], lambda o: only_fo(o)["request_status"] == "REJECTED", "the request to be rejected"
    )
    # The admin shows the order unfulfilled again; the API names that state REQUEST_DECLINED.
    assert done["display_fulfillment_status"] in ("UNFULFILLED", "REQUEST_DECLINED")
    assert done["fulfillments"] == []
    text = timeline_text(done)
    assert "N4-NONE: 0 in stock, 2 needed." in text or "INVENTORY_OUT_OF_STOCK" in text
    record = wait_state(shop, fo_id, {"rejected"})
    assert "INVENTORY_OUT_OF_STOCK" in record.state_changes[-1].detail
    assert shop.available("N4-OK") == 5  # nothing held for a rejected request


def test_n4_incomplete_address_is_rejected_and_open_request_blocks_edits(connected_shop):
    shop = connected_shop
    shop.configure(review_requests=True)
    shop.set_stock("N4-ADDR", 5)
    order = shop.place_order(
        [{"sku": "N4-ADDR", "title": "Parcel", "quantity": 1}],
        shipping_address={"first_name": "No", "last_name": "Street", "city": "", "country_code": "NO"},
    )
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"requested"})
    with pytest.raises(MerchantActionRefused) as refused:
        shop.merchant.edit_order(order["id"])
    assert refused.value.status == 422

    shop.configure(review_requests=False)
    done = wait_order(shop, order["id"], lambda o: only_fo(o)["request_status"] == "REJECTED", "the address rejection")
    assert "Shipping address is incomplete" in timeline_text(done)
    wait_state(shop, fo_id, {"rejected"})


def test_n5_large_order_ships_in_several_packages_with_their_own_tracking(connected_shop):
    shop = connected_shop
    shop.set_stock("N5-A", 20)
    order = shop.place_order([{"sku": "N5-A", "title": "Bricks", "quantity": 6}])  # 4 units per parcel
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    done = wait_order(shop, order["id"], fulfilled, "both packages to ship")
    assert len(done["fulfillments"]) == 2
    numbers = {f["tracking_info"][0]["number"] for f in done["fulfillments"]}
    assert len(numbers) == 2
    assert shipped_quantity(done) == 6
    # The store shows the second fulfillment as soon as it is created; our record follows when the worker commits.
    record = wait_for(
        lambda: (r := shop.record(fo_id)) is not None and [p.state for p in r.packages] == ["shipped", "shipped"] and r,
        what="both packages recorded as shipped",
    )
    assert {p.tracking_number for p in record.packages} == numbers
    assert shop.available("N5-A") == 14


def test_n5_multi_location_order_ships_only_our_items(connected_shop):
    shop = connected_shop
    shop_location = next(loc["id"] for loc in shop.merchant.state()["locations"] if loc["id"] != shop.location_id)
    shop.set_stock("N5-OURS", 5)
    order = shop.merchant.create_order(
        [
            {"sku": "N5-OURS", "title": "Ours", "quantity": 1, "location_id": shop.location_id},
            {"sku": "N5-THEIRS", "title": "Theirs", "quantity": 1, "location_id": shop_location},
        ],
        shipping_address={
            "first_name": "A",
            "last_name": "B",
            "address1": "1 Road",
            "city": "Oslo",
            "country_code": "NO",
            "zip": "0150",
        },
        paid=True,
    )
    ours = next(fo for fo in order["fulfillment_orders"] if fo["assigned_location_id"] == shop.location_id)
    shop.merchant.request_fulfillment(ours["id"])
    done = wait_order(shop, order["id"], lambda o: fo_by_id(o, ours["id"])["status"] == "CLOSED", "our part to ship")
    assert done["display_fulfillment_status"] == "PARTIALLY_FULFILLED"
    theirs = next(fo for fo in done["fulfillment_orders"] if fo["id"] != ours["id"])
    assert theirs["status"] == "OPEN"
    assert [i["sku"] for f in done["fulfillments"] for i in f["line_items"]] == ["N5-OURS"]
    assert shop.record(theirs["id"]) is None


def test_n6_withdrawn_request_is_never_picked(connected_shop):
    shop = connected_shop
    shop.configure(review_requests=True)
    shop.set_stock("N6", 5)
    order = shop.place_order([{"sku": "N6", "title": "Blanket", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"requested"})

    shop.merchant.act(fo_id, "cancel")
    shop.configure(review_requests=False)  # were the worker to decide now, it must see the withdrawal
    record = wait_state(shop, fo_id, {"withdrawn"})
    assert "picked" not in [c.to_state for c in record.state_changes]
    assert record.packages == []
    after = shop.merchant.order(order["id"])
    assert fo_by_id(after, fo_id)["status"] == "CLOSED"
    assert after["fulfillments"] == []
    assert after["display_fulfillment_status"] == "UNFULFILLED"


def test_n7_cancellation_before_shipment_is_accepted_and_stock_released(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=60)
    shop.set_stock("N7-A", 5)
    order = shop.place_order([{"sku": "N7-A", "title": "Chair", "quantity": 2}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"accepted"})
    assert shop.available("N7-A") == 3

    shop.merchant.request_cancellation(fo_id, "Wrong colour")
    wait_state(shop, fo_id, {"cancelled"})
    after = shop.merchant.order(order["id"])
    assert (fo_by_id(after, fo_id)["status"], fo_by_id(after, fo_id)["request_status"]) == (
        "CLOSED",
        "CANCELLATION_ACCEPTED",
    )
    assert after["fulfillments"] == []
    assert "nothing had left the warehouse" in timeline_text(after)
    assert shop.available("N7-A") == 5


def test_n7_cancellation_after_shipment_names_shipped_items(connected_shop):
    shop = connected_shop
    shop.configure(package_interval_s=60)  # the second parcel waits for the next carrier pickup
    shop.set_stock("N7-B", 20)
    order = shop.place_order([{"sku": "N7-B", "title": "Plates", "quantity": 6}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    record = wait_state(shop, fo_id, {"partially_shipped"})
    shipped = next(p for p in record.packages if p.state == "shipped")

    shop.merchant.request_cancellation(fo_id, "Too late?")
    after = wait_order(
        shop,
        order["id"],
        lambda o: fo_by_id(o, fo_id)["request_status"] == "CANCELLATION_REJECTED",
        "the cancellation to be refused",
    )
    text = timeline_text(after)
    assert f"4 x N7-B ({shipped.carrier} {shipped.tracking_number})" in text
    assert fo_by_id(after, fo_id)["status"] == "IN_PROGRESS"
    wait_state(shop, fo_id, {"partially_shipped"})


def test_n7_race_cancellation_arriving_while_packing_stops_shipment(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=0.5, pack_delay_s=3)
    shop.set_stock("N7-C", 5)
    order = shop.place_order([{"sku": "N7-C", "title": "Lamp", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"picked"})  # on the packing bench
    shop.merchant.request_cancellation(fo_id, "Stop!")
    record = wait_state(shop, fo_id, {"cancelled"})
    after = shop.merchant.order(order["id"])
    assert after["fulfillments"] == []
    assert all(p.state != "shipped" for p in record.packages)
    assert shop.available("N7-C") == 5


def test_n8_reset_between_accept_and_ship_stops_work(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=2, review_cancellations=True)
    shop.set_stock("N8", 5)
    order = shop.place_order([{"sku": "N8", "title": "Desk", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"accepted", "picked"})
    shop.merchant.request_cancellation(fo_id, "Cancel please")
    wait_state(shop, fo_id, {"cancellation_requested"})

    shop.merchant.act(fo_id, "cancel")  # the merchant resets to unfulfilled by hand
    record = wait_state(shop, fo_id, {"reset"})
    after = shop.merchant.order(order["id"])
    assert after["fulfillments"] == []
    assert fo_by_id(after, fo_id)["status"] == "CLOSED"
    assert "reset to unfulfilled" in record.state_changes[-1].detail
    assert shop.available("N8") == 5


def test_n9_moved_items_are_not_shipped_and_the_rest_is(connected_shop):
    shop = connected_shop
    shop.configure(review_requests=True)
    shop.set_stock("N9-STAY", 5)
    shop.set_stock("N9-MOVE", 5)
    merchant_location = next(loc["id"] for loc in shop.merchant.state()["locations"] if loc["id"] != shop.location_id)
    order = shop.place_order(
        [
            {"sku": "N9-STAY", "title": "Stays", "quantity": 1},
            {"sku": "N9-MOVE", "title": "Moves", "quantity": 1},
        ]
    )
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"requested"})

    # The store refuses a move while a request is open: the merchant withdraws, then moves one item.
    shop.merchant.act(fo_id, "cancel")
    wait_state(shop, fo_id, {"withdrawn"})
    replacement = next(fo for fo in shop.merchant.order(order["id"])["fulfillment_orders"] if fo["status"] == "OPEN")
    moving = next(li for li in replacement["line_items"] if li["sku"] == "N9-MOVE")
    shop.merchant.act(
        replacement["id"],
        "move",
        location_id=merchant_location,
        line_items=[{"id": moving["id"], "quantity": 1}],
    )
    current = shop.merchant.order(order["id"])
    staying = next(
        fo
        for fo in current["fulfillment_orders"]
        if fo["status"] == "OPEN" and fo["assigned_location_id"] == shop.location_id
    )
    moved = next(
        fo
        for fo in current["fulfillment_orders"]
        if fo["status"] == "OPEN" and fo["assigned_location_id"] == merchant_location
    )
    shop.configure(review_requests=False)
    shop.merchant.request_fulfillment(staying["id"])
    shop.merchant.act(moved["id"], "mark_fulfilled", tracking_number="MERCHANT-1", company="Posten")

    done = wait_order(shop, order["id"], fulfilled, "both parts to be fulfilled")
    ours = [f for f in done["fulfillments"] if f["tracking_info"][0]["number"].startswith("SIM")]
    assert [i["sku"] for f in ours for i in f["line_items"]] == ["N9-STAY"]
    assert shop.record(moved["id"]) is None
    assert shop.available("N9-MOVE") == 5


def test_n10_marked_fulfilled_by_hand_is_not_shipped_again(connected_shop):
    shop = connected_shop
    shop.configure(review_requests=True)
    shop.set_stock("N10", 5)
    order = shop.place_order([{"sku": "N10", "title": "Mirror", "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_state(shop, fo_id, {"requested"})

    with pytest.raises(MerchantActionRefused):  # an in-progress request must be cancelled first
        shop.merchant.act(fo_id, "mark_fulfilled", tracking_number="HAND-1", company="Posten")
    shop.merchant.act(fo_id, "cancel")
    replacement = next(fo for fo in shop.merchant.order(order["id"])["fulfillment_orders"] if fo["status"] == "OPEN")
    shop.merchant.act(
        replacement["id"], "mark_fulfilled", tracking_number="HAND-1", company="Posten", notify_customer=True
    )
    shop.configure(review_requests=False)
    record = wait_state(shop, fo_id, {"withdrawn"})
    done = shop.merchant.order(order["id"])
    assert fulfilled(done)
    assert [f["tracking_info"][0]["number"] for f in done["fulfillments"]] == ["HAND-1"]
    assert record.packages == []


def test_n11_tracking_and_delivery_events_reach_the_store(connected_shop):
    shop = connected_shop
    shop.set_stock("N11", 5)
    order = shop.place_order([{"sku": "N11", "title": "Clock", "quantity": 1}])
    shop.merchant.request_fulfillment(only_fo(order)["id"])
    done = wait_order(
        shop,
        order["id"],
        lambda o: (
            o["fulfillments"]
            and o["fulfillments"][0]["events"]
            and o["fulfillments"][0]["events"][-1]["status"] == "DELIVERED"
        ),
        "the delivered event",
    )
    (fulfillment,) = done["fulfillments"]
    assert [e["status"] for e in fulfillment["events"]] == ["IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"]
    tracking = fulfillment["tracking_info"][0]
    assert tracking["company"] and tracking["url"].endswith(tracking["number"])

    name = fulfillment["name"]
    answer = signed_get(shop, "/fetch_tracking_numbers", [("order_names[]", name), ("shop", shop.domain)])
    assert answer.status_code == 200
    assert answer.json()["tracking_numbers"] == {name: tracking["number"]}
    assert answer.json()["success"] is True


def test_n11_undeliverable_address_takes_the_failure_path(connected_shop):
    shop = connected_shop
    shop.set_stock("N11-F", 5)
    order = shop.place_order(
        [{"sku": "N11-F", "title": "Lost parcel", "quantity": 1}],
        shipping_address={
            "first_name": "A",
            "last_name": "B",
            "address1": "Nowhere 1",
            "city": "Oslo",
            "country_code": "NO",
            "zip": "00000",
        },
    )
    shop.merchant.request_fulfillment(only_fo(order)["id"])
    done = wait_order(
        shop,
        order["id"],
        lambda o: (
            o["fulfillments"]
            and o["fulfillments"][0]["events"]
            and o["fulfillments"][0]["events"][-1]["status"] == "FAILURE"
        ),
        "the failure event",
    )
    assert "Delivery failed" in timeline_text(done)


def test_fetch_stock_answers_signed_requests_in_both_shapes(connected_shop):
    shop = connected_shop
    shop.set_stock("STOCK-A", 7)
    for path in ("/fetch_stock", "/fetch_stock.json"):
        answer = signed_get(shop, path, [("sku", "STOCK-A"), ("shop", shop.domain)])
        assert answer.status_code == 200
        body = answer.json()
        # The current reading takes the bare map; the store's legacy reader looked under `stock_levels`.
        assert body["STOCK-A"] == 7
        assert body.get("stock_levels", body)["STOCK-A"] == 7
    unsigned = requests.get(f"{shop.system.app_url}/fetch_stock?sku=STOCK-A&shop={shop.domain}", timeout=10)
    assert unsigned.status_code == 401


def test_n9_race_move_of_some_items_while_others_ship(connected_shop):
    shop = connected_shop
    shop.configure(pick_delay_s=1, pack_delay_s=1)
    shop.set_stock("N9R-SHIP", 5)
    shop.set_stock("N9R-MOVE", 5)
    merchant_location = next(loc["id"] for loc in shop.merchant.state()["locations"] if loc["id"] != shop.location_id)
    order = shop.place_order(
        [
            {"sku": "N9R-SHIP", "title": "Ships", "quantity": 1},
            {"sku": "N9R-MOVE", "title": "Moves", "quantity": 1},
        ]
    )
    fo = only_fo(order)
    shipping_line = next(li for li in fo["line_items"] if li["sku"] == "N9R-SHIP")
    # The merchant requests fulfilment of one item only: the rest splits off, unsubmitted, still at our location.
    shop.merchant.request_fulfillment(fo["id"], line_items=[{"id": shipping_line["id"], "quantity": 1}])
    wait_state(shop, fo["id"], {"accepted", "picked", "packed"})

    rest = next(
        f for f in shop.merchant.order(order["id"])["fulfillment_orders"] if f["request_status"] == "UNSUBMITTED"
    )
    shop.merchant.act(rest["id"], "move", location_id=merchant_location)  # while ours is on the bench

    record = wait_state(shop, fo["id"], {"shipped"})
    done = shop.merchant.order(order["id"])
    ours = [f for f in done["fulfillments"] if f["tracking_info"][0]["number"].startswith("SIM")]
    assert [i["sku"] for f in ours for i in f["line_items"]] == ["N9R-SHIP"]
    moved = fo_by_id(done, rest["id"])
    assert moved["assigned_location_id"] == merchant_location and moved["status"] == "OPEN"
    assert [line.sku for line in record.line_items] == ["N9R-SHIP"]
    assert shop.record(rest["id"]) is None
    assert shop.available("N9R-MOVE") == 5
