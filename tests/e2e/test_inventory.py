"""Many merchants, one warehouse, over real HTTP with the whole system running: each shop's goods on shelves of
their own, the store's stock pull answered per shop, stock in and out from the dashboard, and our stock pushed to
each store's inventory at our location."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from devstack.system import ConnectedShop
from devstack.wait import wait_for
from fulfillment import stock
from fulfillment.accounts import create_operator

SKU = "INV-TEE"  # the same SKU in every shop of this module: stock per shop keeps them apart
PASSWORD = "a long operator password"


def connect(system, label: str) -> ConnectedShop:
    """One more shop with our app installed, as the `connected_shop` fixture makes one."""
    return system.connect_shop(f"inv-{label}-{uuid.uuid4().hex[:6]}.myshopify.com", subscribe_webhooks=False)


def store_pulls_stock(shop: ConnectedShop, sku: str | None = None) -> dict:
    """The store asks our callback URL for stock (its signed GET `fetch_stock`) and keeps what we answered."""
    body = {"sku": sku} if sku else {}
    answer = requests.post(f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/fetch_stock", json=body, timeout=30)
    answer.raise_for_status()
    (result,) = answer.json()["results"]
    assert result["status"] == 200, result
    return result["stock"]


def request_status(shop: ConnectedShop, order: dict) -> str:
    (fo,) = shop.merchant.order(order["id"])["fulfillment_orders"]
    return fo["request_status"]


def test_inventory_two_shops_with_the_same_sku_never_take_each_others_stock(system):
    first, second = connect(system, "a"), connect(system, "b")
    first.set_stock(SKU, 5)
    first.set_stock("INV-A-ONLY", 3)
    second.set_stock(SKU, 1)
    second.set_stock("INV-B-ONLY", 4)

    # The second shop has one unit: its order of two is refused, though the first shop has five free.
    refused = second.place_order([{"sku": SKU, "title": "T-shirt", "quantity": 2}])
    (refused_fo,) = refused["fulfillment_orders"]
    second.merchant.request_fulfillment(refused_fo["id"])
    wait_for(lambda: request_status(second, refused) == "REJECTED", timeout=60, what="the second shop's refusal")
    # The store hears of the refusal a moment before our record of it is committed.
    record = wait_for(
        lambda: (r := second.record(refused_fo["id"])) is not None and r.state == "rejected" and r,
        timeout=30,
        what="our record of the refusal",
    )
    assert "INVENTORY_OUT_OF_STOCK" in record.state_changes[-1].detail
    timeline = "\n".join(entry["message"] or "" for entry in second.merchant.order(refused["id"])["timeline"])
    assert f"{SKU}: 1 in stock, 2 needed." in timeline  # the store's line item message counts its own shelf
    assert first.available(SKU) == 5

    # The first shop's order of three is taken from its own shelf; the second shop's unit stays where it is.
    taken = first.place_order([{"sku": SKU, "title": "T-shirt", "quantity": 3}])
    (taken_fo,) = taken["fulfillment_orders"]
    first.merchant.request_fulfillment(taken_fo["id"])
    wait_for(
        lambda: (
            (r := first.record(taken_fo["id"])) is not None and r.state in {"accepted", "picked", "packed", "shipped"}
        ),
        timeout=60,
        what="the first shop's order to be accepted",
    )
    assert (first.available(SKU), second.available(SKU)) == (2, 1)

    # Each shop's stock pull lists its own shelves only, the shared SKU with its own figure.
    assert store_pulls_stock(first) == {SKU: 2, "INV-A-ONLY": 3}
    assert store_pulls_stock(second) == {SKU: 1, "INV-B-ONLY": 4}
    assert store_pulls_stock(second, "INV-A-ONLY") == {"INV-A-ONLY": 0}
    assert store_pulls_stock(first, SKU) == {SKU: 2}


# --- stock in and out from the dashboard ---------------------------------------------------------------------


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def dashboard(system) -> requests.Session:
    """A browser-like session signed in to the dashboard."""
    email = f"operator-{uuid.uuid4().hex[:8]}@warehouse.example"
    create_operator(system.context(), email, PASSWORD)
    session = requests.Session()
    login = session.get(f"{system.app_url}/dashboard/login", timeout=10)
    signed_in = session.post(
        f"{system.app_url}/dashboard/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(login.text)},
        timeout=10,
    )
    assert signed_in.status_code == 200 and "/dashboard/login" not in signed_in.url
    return session


def shelves(shop: ConnectedShop) -> dict[str, int]:
    return {row.sku: row.on_hand for row in stock.levels(shop.system.context(), shop.shop_id)}


def test_inventory_a_csv_with_one_bad_line_changes_nothing_and_reports_the_line(system, dashboard):
    first, second = connect(system, "c"), connect(system, "d")
    first.set_stock(SKU, 10)
    second.set_stock(SKU, 7)
    page = f"{system.app_url}/dashboard/stock"
    token = _token(dashboard.get(page, params={"shop": first.shop_id}, timeout=10).text)
    sheet = f"sku,on_hand\n{SKU},12\nINV-CAP,lots\nINV-MUG,4\n".encode()

    for mode in ("dry-run", "import"):
        answer = dashboard.post(
            f"{page}/import",
            data={"csrf_token": token, "shop": first.shop_id, "mode": mode},
            files={"file": ("count.csv", sheet, "text/csv")},
            timeout=30,
        )
        assert answer.status_code == 422
        assert "line 3: on_hand must be a whole number from 0 to 10000000, not &#39;lots&#39;" in answer.text
        assert "Nothing imported: 1 problem(s) in the file." in answer.text
        assert shelves(first) == {SKU: 10}

    # Without the bad line, the dry run shows the change and still makes none; the import makes it.
    good = f"sku,on_hand\n{SKU},12\nINV-MUG,4\n".encode()
    preview = dashboard.post(
        f"{page}/import",
        data={"csrf_token": token, "shop": first.shop_id, "mode": "dry-run"},
        files={"file": ("count.csv", good, "text/csv")},
        timeout=30,
    )
    assert preview.status_code == 200 and "2 SKU(s) would change, 0 unchanged." in preview.text
    assert shelves(first) == {SKU: 10}
    imported = dashboard.post(
        f"{page}/import",
        data={"csrf_token": token, "shop": first.shop_id, "mode": "import"},
        files={"file": ("count.csv", good, "text/csv")},
        timeout=30,
    )
    assert imported.status_code == 200 and "2 SKU(s) changed, 0 unchanged." in imported.text
    assert shelves(first) == {SKU: 12, "INV-MUG": 4}
    assert shelves(second) == {SKU: 7}  # the other shop's shelf of the same SKU is not on this sheet

    exported = dashboard.get(f"{system.app_url}/dashboard/stock.csv", params={"shop": first.shop_id}, timeout=10)
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert exported.text.splitlines() == ["sku,on_hand,reserved,available", "INV-MUG,4,0,4", f"{SKU},12,0,12"]


def test_inventory_receipts_and_adjustments_from_the_dashboard_go_to_the_chosen_shop(system, dashboard):
    first, second = connect(system, "e"), connect(system, "f")
    first.set_stock(SKU, 2)
    second.set_stock(SKU, 2)
    page = f"{system.app_url}/dashboard/stock"
    token = _token(dashboard.get(page, timeout=10).text)

    received = dashboard.post(
        f"{page}/receipts",
        data={"csrf_token": token, "shop": second.shop_id, "sku": SKU, "units": "6", "note": "delivery 42"},
        timeout=10,
    )
    assert received.status_code == 200 and f"{SKU}: 6 received, 8 on hand." in received.text
    refused = dashboard.post(
        f"{page}/adjustments",
        data={"csrf_token": token, "shop": first.shop_id, "sku": SKU, "change": "-3", "note": "dropped"},
        timeout=10,
    )
    assert "2 on hand, cannot take 3 away" in refused.text
    adjusted = dashboard.post(
        f"{page}/adjustments",
        data={"csrf_token": token, "shop": first.shop_id, "sku": SKU, "change": "-1", "note": "dropped"},
        timeout=10,
    )
    assert f"{SKU}: adjusted by -1, 1 on hand." in adjusted.text
    assert (first.available(SKU), second.available(SKU)) == (1, 8)
    shown = dashboard.get(page, params={"shop": second.shop_id}, timeout=10).text
    assert "delivery 42" in shown and "dropped" not in shown  # the page of one shop shows its movements only


# --- inventory pushed to the store ------------------------------------------------------------------------------


def store_product(shop: ConnectedShop, sku: str) -> str:
    """The merchant's product with `sku`, tracked and stocked at our location (nothing there yet); its item's id."""
    answer = requests.post(
        f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/products",
        json={
            "title": f"Product {sku}",
            "variants": [{"sku": sku, "tracked": True, "quantities": {shop.location_id: 0}}],
        },
        timeout=10,
    )
    answer.raise_for_status()
    (variant,) = answer.json()["variants"]
    return variant["inventory_item"]["id"]


def at_our_location(shop: ConnectedShop, item_id: str) -> tuple[int, int]:
    """The store's (on_hand, available) of the item at our location."""
    answer = requests.get(
        f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/inventory_items/{item_id}", timeout=10
    )
    answer.raise_for_status()
    (level,) = [lv for lv in answer.json()["levels"] if lv["location_id"] == shop.location_id]
    return level["quantities"]["on_hand"], level["quantities"]["available"]


def ours(shop: ConnectedShop, sku: str) -> tuple[int, int]:
    """Our (on_hand, available) of the shop's shelf."""
    from sqlalchemy import select

    from fulfillment.models import StockLevel

    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        on_hand = session.scalar(
            select(StockLevel.on_hand).where(StockLevel.shop_id == shop.shop_id, StockLevel.sku == sku)
        )
        return on_hand, ctx.warehouse(session).available(shop.shop_id, [sku])[sku]


def receive(shop: ConnectedShop, sku: str, units: int) -> None:
    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        ctx.warehouse(session).receive(shop.shop_id, sku, units, actor="goods-in", note="delivery")


def store_follows(
    shop: ConnectedShop,
    item_id: str,
    sku: str,
    expected: tuple[int, int],
    what: str,
    store: tuple[int, int] | None = None,
) -> None:
    """Wait until our (on_hand, available) is `expected` and the store shows it too (or `store`, when the store
    commits units to an order we do not hold for)."""
    wait_for(
        lambda: (ours(shop, sku), at_our_location(shop, item_id)) == (expected, store or expected),
        timeout=3 * float(shop.system.env.get("SWEEP_INTERVAL_S", "30")) + 15,
        what=f"the store's quantity at our location after {what}",
    )


def adjustments(shop: ConnectedShop) -> dict:
    answer = requests.get(f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/inventory_adjustments", timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_inventory_the_stores_quantity_follows_a_receipt_an_accept_a_shipment_and_a_cancellation(system):
    shop = connect(system, "push")
    shop.configure(pick_delay_s=6)  # time to look between the accept and the shipment
    item = store_product(shop, "INV-PUSH")

    receive(shop, "INV-PUSH", 5)
    store_follows(shop, item, "INV-PUSH", (5, 5), "a receipt")
    (group,) = [g for g in adjustments(shop)["adjustment_groups"] if g["app"]]
    assert group["reason"] == "received"
    assert re.fullmatch(r"logistics://warehouse-fulfillment/stock-movements/\d+", group["reference_document_uri"])

    shipped = shop.place_order([{"sku": "INV-PUSH", "title": "Tee", "quantity": 2}])
    (shipped_fo,) = shipped["fulfillment_orders"]
    shop.merchant.request_fulfillment(shipped_fo["id"])
    wait_for(lambda: (r := shop.record(shipped_fo["id"])) and r.state != "requested", timeout=60, what="the accept")
    store_follows(shop, item, "INV-PUSH", (5, 3), "an accept")

    wait_for(lambda: shop.record(shipped_fo["id"]).state == "shipped", timeout=60, what="the shipment")
    store_follows(shop, item, "INV-PUSH", (3, 3), "a shipment")

    cancelled = shop.place_order([{"sku": "INV-PUSH", "title": "Tee", "quantity": 1}])
    (cancelled_fo,) = cancelled["fulfillment_orders"]
    shop.merchant.request_fulfillment(cancelled_fo["id"])
    wait_for(lambda: (r := shop.record(cancelled_fo["id"])) and r.state != "requested", timeout=60, what="the accept")
    store_follows(shop, item, "INV-PUSH", (3, 2), "the second accept")
    shop.merchant.request_cancellation(cancelled_fo["id"], "changed my mind")
    wait_for(lambda: shop.record(cancelled_fo["id"]).state == "cancelled", timeout=60, what="the cancellation")
    # Our hold is released; the store still commits the unit to the order, open again on a new fulfillment order.
    store_follows(shop, item, "INV-PUSH", (3, 3), "a cancellation", store=(3, 2))
    requests.post(
        f"{system.sandbox_url}/_sandbox/shops/{shop.domain}/orders/{cancelled['id'].rsplit('/', 1)[-1]}/cancel",
        json={"reason": "CUSTOMER"},
        timeout=10,
    ).raise_for_status()
    store_follows(shop, item, "INV-PUSH", (3, 3), "the order's cancellation")


def test_inventory_a_lost_answer_is_sent_again_under_the_same_key_and_applied_once(system):
    shop = connect(system, "lost")
    item = store_product(shop, "INV-LOST")
    shop.merchant.set_faults(lose_answers={"InventorySetQuantities": 1})

    receive(shop, "INV-LOST", 7)

    store_follows(shop, item, "INV-LOST", (7, 7), "a receipt whose answer was lost")
    assert shop.merchant.state()["faults"]["lose_answers"] == {"InventorySetQuantities": 0}  # it was lost
    # The first send applied (the store shows 7) but its answer was lost: the second, under the same key, is
    # answered from the first.
    wait_for(
        lambda: (
            [k["replays"] for k in adjustments(shop)["idempotency_keys"] if k["mutation"] == "inventorySetQuantities"]
            == [1]
        ),
        timeout=30,
        what="the same key sent again",
    )
    seen = adjustments(shop)
    (group,) = [g for g in seen["adjustment_groups"] if g["app"]]
    assert {c["name"]: c["delta"] for c in group["changes"]} == {"available": 7, "on_hand": 7}


def test_inventory_a_merchants_edit_on_the_store_is_repaired_by_the_reconciliation(system):
    from workers.queue import RECONCILE_INVENTORY_TASK

    shop = connect(system, "drift")
    item = store_product(shop, "INV-DRIFT")
    receive(shop, "INV-DRIFT", 4)
    store_follows(shop, item, "INV-DRIFT", (4, 4), "a receipt")

    # The merchant types a number for our location in the admin.
    edit = requests.post(
        f"{system.sandbox_url}/_sandbox/shops/{shop.domain}/inventory",
        json={"inventory_item_id": item, "location_id": shop.location_id, "quantity": 40, "name": "on_hand"},
        timeout=10,
    )
    edit.raise_for_status()
    assert at_our_location(shop, item) == (40, 40)

    system.celery().send_task(RECONCILE_INVENTORY_TASK, args=(shop.shop_id,))  # as beat's schedule does

    store_follows(shop, item, "INV-DRIFT", (4, 4), "the reconciliation")
    repair = [g for g in adjustments(shop)["adjustment_groups"] if g["app"]][-1]
    assert repair["reason"] == "correction"
    assert {c["name"]: c["delta"] for c in repair["changes"]} == {"available": -36, "on_hand": -36}
