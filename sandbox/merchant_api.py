"""The sandbox's own REST API under `/_sandbox`: what the merchant does in the admin, and the controls the demo
runner and end-to-end tests use (shops, installs, orders, faults, what was sent). JSON in and out.

Merchant actions call the same `store.py` functions as the GraphQL mutations. A store `StoreUserError` answers
422 `{"user_errors": [...]}`, an unknown id 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from sandbox import inventory as inv
from sandbox import payloads
from sandbox import store as st
from sandbox.model import MERCHANT_ACTOR, FulfillmentOrder, ResourceNotFound, Shop, StoreUserError

bp = Blueprint("merchant_api", __name__, url_prefix="/_sandbox")
# Ids may be given as numbers or as gids, raw (`.../fulfillment_orders/gid://shopify/FulfillmentOrder/1001/cancel`)
# or percent-encoded; `create_app` turns off werkzeug's slash merging so that raw gids survive routing.


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def _store() -> st.Store:
    return _sandbox().store


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _shop(name: str) -> Shop:
    store = _store()
    shop = store.shops.get(name) or store.shops.get(f"{name}.myshopify.com")
    if shop is None:
        raise ResourceNotFound(name)
    return shop


@bp.errorhandler(StoreUserError)
def _user_error(error: StoreUserError) -> Any:
    errors = getattr(error, "errors", [error])  # some refusals carry several
    return jsonify({"user_errors": [{"field": e.field, "message": e.message, "code": e.code} for e in errors]}), 422


@bp.errorhandler(ResourceNotFound)
def _not_found(error: ResourceNotFound) -> Any:
    return jsonify({"errors": "Not Found", "id": error.resource_id}), 404


@bp.errorhandler(ValueError)
def _bad_request(error: ValueError) -> Any:
    return jsonify({"errors": str(error)}), 400


# ---------------------------------------------------------------------------------------------------------
# JSON views
# ---------------------------------------------------------------------------------------------------------


def _fo_json(shop: Shop, fo: FulfillmentOrder) -> dict[str, Any]:
    return payloads.fulfillment_order_json(shop, fo, st.supported_actions(shop, fo))


def _order_json(shop: Shop, order: Any) -> dict[str, Any]:
    actions = {i: st.supported_actions(shop, shop.fulfillment_orders[i]) for i in order.fulfillment_order_ids}
    return payloads.order_json(shop, order, st.display_fulfillment_status(shop, order), actions)


def _throttle(shop: Shop) -> dict[str, Any]:
    caller = next(iter(shop.installs), "merchant")
    status = _sandbox().buckets.get(shop, caller).status()
    return {
        "maximum_available": status.maximum_available,
        "currently_available": status.currently_available,
        "restore_rate": status.restore_rate,
    }


def _shop_summary(shop: Shop) -> dict[str, Any]:
    base = _sandbox().config.public_url
    return {
        "domain": shop.domain,
        "id": shop.id,
        "name": shop.name,
        "merchant_token": shop.merchant_token,
        "plan": shop.plan,
        "workflow": shop.workflow,
        "auto_fulfill": shop.auto_fulfill,
        "locations": [payloads.location_json(loc) for loc in shop.locations.values()],
        "graphql_url": f"{base}/store/{shop.domain}/admin/api/2026-07/graphql.json",
        "admin_url": f"{base}/store/{shop.domain}/admin",
    }


def _shop_state(shop: Shop) -> dict[str, Any]:
    return {
        **_shop_summary(shop),
        "fulfillment_services": [payloads.service_json(s) for s in shop.services.values()],
        "webhook_subscriptions": [payloads.subscription_json(s) for s in shop.webhook_subscriptions.values()],
        "installs": [
            {"id": i.id, "scopes": i.scopes, "created_at": payloads.iso(i.created_at)} for i in shop.installs.values()
        ],
        "throttle": _throttle(shop),
        "cost": {
            "cost_charged": shop.cost_charged,
            "throttled_requests": shop.throttled_requests,
            "requests": shop.requests,
        },
        "callbacks_sent": list(shop.callbacks_sent),
        "webhooks_sent": list(shop.webhooks_sent),
        "faults": shop.faults.as_json(),
    }


# ---------------------------------------------------------------------------------------------------------
# Shops, installs, faults
# ---------------------------------------------------------------------------------------------------------


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"ok": True, "shops": len(_store().shops)})


@bp.post("/shops")
def create_shop() -> Any:
    body = _body()
    shop, created = _store().create_shop(
        body.get("domain", ""),
        plan=body.get("plan") or "standard",
        workflow=body.get("workflow") or "fulfillment_orders",
        auto_fulfill=bool(body.get("auto_fulfill", False)),
        throttle=body.get("throttle"),
    )
    return jsonify(_shop_summary(shop)), 201 if created else 200


@bp.get("/shops")
def list_shops() -> Any:
    with _store().lock:
        return jsonify({"shops": [_shop_summary(s) for s in _store().shops.values()]})


@bp.get("/shops/<shop_name>")
def show_shop(shop_name: str) -> Any:
    with _store().lock:
        return jsonify(_shop_state(_shop(shop_name)))


@bp.post("/shops/<shop_name>/app_installs")
def install_app(shop_name: str) -> Any:
    install = _store().install_app(_shop(shop_name), _body().get("scopes", ""))
    return jsonify({"access_token": install.access_token, "install_id": install.id, "scope": install.scopes}), 201


@bp.delete("/shops/<shop_name>/app_installs")
@bp.delete("/shops/<shop_name>/app_installs/<install_id>")
def uninstall_app(shop_name: str, install_id: str | None = None) -> Any:
    removed = _store().uninstall_app(_shop(shop_name), install_id)
    return jsonify({"uninstalled": removed})


@bp.get("/shops/<shop_name>/faults")
def show_faults(shop_name: str) -> Any:
    return jsonify(_shop(shop_name).faults.as_json())


@bp.put("/shops/<shop_name>/faults")
def set_faults(shop_name: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        shop.faults.update(_body())
        return jsonify(shop.faults.as_json())


@bp.put("/shops/<shop_name>/throttle")
def set_throttle(shop_name: str) -> Any:
    """Resize the shop's buckets (they restart full)."""
    shop = _shop(shop_name)
    body = _body()
    with _store().lock:
        shop.maximum_available = int(body.get("maximum_available", shop.maximum_available))
        shop.restore_rate = int(body.get("restore_rate", shop.restore_rate))
    return jsonify(_throttle(shop))


@bp.get("/shops/<shop_name>/callbacks")
def callbacks(shop_name: str) -> Any:
    with _store().lock:
        return jsonify({"callbacks_sent": list(_shop(shop_name).callbacks_sent)})


@bp.get("/shops/<shop_name>/webhooks")
def webhooks(shop_name: str) -> Any:
    with _store().lock:
        return jsonify({"webhooks_sent": list(_shop(shop_name).webhooks_sent)})


def _pull(shop_name: str, kind: str, wanted: str) -> list[tuple[Shop, Any, str, list[tuple[str, str]]]]:
    """Services of the shop to ask (those with a callback URL and the capability), with their query."""
    shop = _shop(shop_name)
    body = _body()
    suffix = ".json" if body.get("json_suffix") else ""
    asks = []
    with _store().lock:
        for service in shop.services.values():
            if not service.callback_url or not getattr(service, wanted):
                continue
            url = f"{service.callback_url.rstrip('/')}/{kind}{suffix}"
            if kind == "fetch_stock":
                params = [("shop", shop.domain)] + ([("sku", body["sku"])] if body.get("sku") else [])
            else:
                names = [f.name for f in st.fulfillments_missing_tracking(shop, service)]
                if not names:
                    continue
                params = [("order_names[]", n) for n in names] + [("shop", shop.domain)]
            asks.append((shop, service, url, params))
    return asks


@bp.post("/shops/<shop_name>/fetch_stock")
def fetch_stock(shop_name: str) -> Any:
    """Ask every inventory-managing service for its stock now (the store does it about hourly)."""
    results = []
    for shop, service, url, params in _pull(shop_name, "fetch_stock", "inventory_management"):
        outcome = _sandbox().notifier.fetch(shop, url, params, "fetch_stock")
        answer = outcome.pop("answer")
        if outcome["status"] == 200 and isinstance(answer, dict):
            with _store().lock:
                outcome["stock"] = st.record_stock(shop, service, answer)
        results.append({"service_id": payloads.gid("FulfillmentService", service.id), **outcome})
    return jsonify({"results": results})


@bp.post("/shops/<shop_name>/fetch_tracking_numbers")
def fetch_tracking_numbers(shop_name: str) -> Any:
    """Ask every tracking service for the numbers of its fulfillments that have none (the store: hourly)."""
    results = []
    for shop, service, url, params in _pull(shop_name, "fetch_tracking_numbers", "tracking_support"):
        outcome = _sandbox().notifier.fetch(shop, url, params, "fetch_tracking_numbers")
        answer = outcome.pop("answer")
        if outcome["status"] == 200 and isinstance(answer, dict) and isinstance(answer.get("tracking_numbers"), dict):
            with _store().transaction(shop):
                updated = st.apply_tracking_numbers(shop, service, answer["tracking_numbers"])
            outcome["updated"] = [f.name for f in updated]
        results.append({"service_id": payloads.gid("FulfillmentService", service.id), **outcome})
    return jsonify({"results": results})


@bp.get("/shops/<shop_name>/stock")
def stock(shop_name: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify({payloads.gid("Location", loc): dict(levels) for loc, levels in shop.stock.items()})


@bp.post("/wait_idle")
def wait_idle() -> Any:
    """Block until every callback and webhook (including retries) has been sent: for deterministic tests."""
    timeout = float(_body().get("timeout", 10))
    return jsonify({"idle": _sandbox().notifier.wait_idle(timeout)})


# ---------------------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------------------


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@bp.post("/shops/<shop_name>/orders")
def create_order(shop_name: str) -> Any:
    shop = _shop(shop_name)
    body = _body()
    with _store().transaction(shop):
        order = st.create_order(
            shop,
            body.get("line_items") or [],
            body.get("shipping_address"),
            body.get("note"),
            bool(body.get("paid", True)),
            _datetime(body.get("fulfill_at")),
            {k: body[k] for k in ("email", "phone", "tags", "currency", "financial_status") if k in body},
        )
        return jsonify(_order_json(shop, order)), 201


@bp.get("/shops/<shop_name>/orders")
def list_orders(shop_name: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify({"orders": [_order_json(shop, o) for o in shop.orders.values()]})


@bp.get("/shops/<shop_name>/orders/<path:order_id>")
def show_order(shop_name: str, order_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify(_order_json(shop, st.get_order(shop, order_id)))


ORDER_ACTIONS = {
    "edit": lambda shop, order_id, body: st.edit_order(shop, order_id, body),
    "refund": lambda shop, order_id, body: st.refund_order(shop, order_id, body),
    "pay": lambda shop, order_id, body: st.pay_order(shop, order_id),
    "cancel": lambda shop, order_id, body: st.cancel_order(shop, order_id, body.get("reason"), body.get("staff_note")),
}


@bp.post("/shops/<shop_name>/orders/<path:order_id>/<action>")
def order_action(shop_name: str, order_id: str, action: str) -> Any:
    shop = _shop(shop_name)
    handler = ORDER_ACTIONS.get(action)
    if handler is None:
        return jsonify({"errors": f"unknown order action {action}"}), 404
    with _store().transaction(shop):
        order = handler(shop, order_id, _body())
        return jsonify(_order_json(shop, order))


# ---------------------------------------------------------------------------------------------------------
# Merchant actions on fulfillment orders
# ---------------------------------------------------------------------------------------------------------


def _tracking(body: dict[str, Any]) -> dict[str, Any] | None:
    tracking = {k: body.get(src) for k, src in (("number", "tracking_number"), ("company", "company"), ("url", "url"))}
    return tracking if any(tracking.values()) else None


def _mark_fulfilled(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    fo = st.get_fulfillment_order(shop, fo_id)  # an unknown id in the path is a 404 here, not a userError
    fulfillment = st.create_fulfillment(
        shop,
        [{"fulfillmentOrderId": fo.id, "fulfillmentOrderLineItems": body.get("line_items")}],
        _tracking(body),
        body.get("notify_customer"),
        body.get("message"),
        MERCHANT_ACTOR,
    )
    return [shop.fulfillment_orders[i] for i in fulfillment.fulfillment_order_ids] + [fulfillment]


def _hold(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    result = st.hold_fulfillment_order(
        shop,
        fo_id,
        {
            "reason": body.get("reason") or "OTHER",
            "reasonNotes": body.get("reason_notes"),
            "handle": body.get("handle") or "",
            "fulfillmentOrderLineItems": body.get("line_items"),
        },
        MERCHANT_ACTOR,
    )
    return [result.fulfillment_order, result.remaining]


def _submit(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    result = st.submit_fulfillment_request(
        shop, fo_id, body.get("message"), body.get("notify_customer"), body.get("line_items"), MERCHANT_ACTOR
    )
    return [result.original, result.submitted, result.unsubmitted]


def _move(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    result = st.move_fulfillment_order(shop, fo_id, body.get("location_id"), body.get("line_items"), MERCHANT_ACTOR)
    return [result.original, result.moved]


def _split(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    results = st.split_fulfillment_orders(
        shop, [{"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": body.get("line_items")}], MERCHANT_ACTOR
    )
    return [results[0].fulfillment_order, results[0].remaining]


def _merge(shop: Shop, fo_id: str, body: dict[str, Any]) -> list[Any]:
    # Without ids, merge with every fulfillment order the admin would offer (same order and location).
    others = body.get("fulfillment_order_ids") or [
        f.id for f in st.merge_partners(shop, st.get_fulfillment_order(shop, fo_id))
    ]
    intents = [{"fulfillmentOrderId": i} for i in [fo_id, *others]]
    merged = st.merge_fulfillment_orders(shop, [{"mergeIntents": intents}], MERCHANT_ACTOR)
    return [*merged, *(st.get_fulfillment_order(shop, i["fulfillmentOrderId"]) for i in intents)]


FO_ACTIONS = {
    "submit_fulfillment_request": _submit,
    "submit_cancellation_request": lambda shop, fo_id, body: [
        st.submit_cancellation_request(shop, fo_id, body.get("message"), MERCHANT_ACTOR)
    ],
    "cancel": lambda shop, fo_id, body: list(st.cancel_fulfillment_order(shop, fo_id, MERCHANT_ACTOR)),
    "move": _move,
    "hold": _hold,
    "release_hold": lambda shop, fo_id, body: [st.release_hold(shop, fo_id, body.get("hold_ids"), MERCHANT_ACTOR)],
    "mark_fulfilled": _mark_fulfilled,
    "split": _split,
    "merge": _merge,
    "open": lambda shop, fo_id, body: [st.open_fulfillment_order(shop, fo_id, MERCHANT_ACTOR)],
    "reschedule": lambda shop, fo_id, body: [
        st.reschedule_fulfillment_order(shop, fo_id, _datetime(body.get("fulfill_at")), MERCHANT_ACTOR)
    ],
}


@bp.get("/shops/<shop_name>/fulfillment_orders/<path:fo_id>")
def show_fulfillment_order(shop_name: str, fo_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify(_fo_json(shop, st.get_fulfillment_order(shop, fo_id)))


@bp.post("/shops/<shop_name>/fulfillment_orders/<path:fo_id>/<action>")
def fulfillment_order_action(shop_name: str, fo_id: str, action: str) -> Any:
    shop = _shop(shop_name)
    handler = FO_ACTIONS.get(action)
    if handler is None:
        return jsonify({"errors": f"unknown action {action}", "actions": sorted(FO_ACTIONS)}), 404
    with _store().transaction(shop):
        results = handler(shop, fo_id, _body())
        answer: dict[str, Any] = {"fulfillment_orders": []}
        seen: set[int] = set()
        for record in results:
            if isinstance(record, FulfillmentOrder) and record.id not in seen:
                seen.add(record.id)
                answer["fulfillment_orders"].append(_fo_json(shop, record))
            elif record is not None and not isinstance(record, FulfillmentOrder):
                answer["fulfillment"] = payloads.fulfillment_json(shop, record)
        order = shop.orders[st.get_fulfillment_order(shop, fo_id).order_id]
        answer["order"] = {
            "id": payloads.gid("Order", order.id),
            "name": order.name,
            "display_fulfillment_status": st.display_fulfillment_status(shop, order),
        }
        return jsonify(answer)


# ---------------------------------------------------------------------------------------------------------
# Locations, products and inventory: what the merchant does in the admin
# ---------------------------------------------------------------------------------------------------------


@bp.post("/shops/<shop_name>/locations")
def add_location(shop_name: str) -> Any:
    shop = _shop(shop_name)
    body = _body()
    with _store().transaction(shop):
        location = inv.add_location(
            shop, body.get("name") or "", body.get("address"), body.get("fulfills_online_orders", True)
        )
        return jsonify(payloads.merchant_location_json(location)), 201


@bp.get("/shops/<shop_name>/locations")
def list_locations(shop_name: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify({"locations": [payloads.merchant_location_json(loc) for loc in shop.locations.values()]})


@bp.patch("/shops/<shop_name>/locations/<path:location_id>")
def edit_location(shop_name: str, location_id: str) -> Any:
    shop = _shop(shop_name)
    body = _body()
    changes = {k: body[k] for k in ("name", "address") if k in body}
    if "fulfills_online_orders" in body:
        changes["fulfillsOnlineOrders"] = bool(body["fulfills_online_orders"])
    with _store().transaction(shop):
        return jsonify(payloads.merchant_location_json(inv.edit_location(shop, location_id, changes)))


@bp.post("/shops/<shop_name>/locations/<path:location_id>/activate")
def activate_location(shop_name: str, location_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().transaction(shop):
        location = inv.activate_location(shop, location_id)
        return jsonify(payloads.merchant_location_json(location))


@bp.post("/shops/<shop_name>/locations/<path:location_id>/deactivate")
def deactivate_location(shop_name: str, location_id: str) -> Any:
    shop = _shop(shop_name)
    destination = _body().get("destination_location_id")
    with _store().transaction(shop):
        return jsonify(payloads.merchant_location_json(inv.deactivate_location(shop, location_id, destination)))


@bp.delete("/shops/<shop_name>/locations/<path:location_id>")
def delete_location(shop_name: str, location_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().transaction(shop):
        return jsonify({"deleted_location_id": payloads.gid("Location", inv.delete_location(shop, location_id))})


@bp.post("/shops/<shop_name>/products")
def create_product(shop_name: str) -> Any:
    shop = _shop(shop_name)
    body = _body()
    with _store().transaction(shop):
        product = inv.create_product(shop, body.get("title") or "", body.get("variants"), body.get("status", "ACTIVE"))
        return jsonify(payloads.product_json(shop, product)), 201


@bp.get("/shops/<shop_name>/products")
def list_products(shop_name: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        return jsonify({"products": [payloads.product_json(shop, p) for p in shop.products.values()]})


@bp.get("/shops/<shop_name>/inventory_items/<path:item_id>")
def show_inventory_item(shop_name: str, item_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().lock:
        item = inv.find_item(shop, item_id)
        if item is None:
            raise ResourceNotFound(item_id)
        return jsonify(payloads.inventory_item_json(shop, item))


@bp.patch("/shops/<shop_name>/inventory_items/<path:item_id>")
def update_inventory_item(shop_name: str, item_id: str) -> Any:
    shop = _shop(shop_name)
    with _store().transaction(shop):
        return jsonify(payloads.inventory_item_json(shop, inv.update_inventory_item(shop, item_id, _body())))


@bp.post("/shops/<shop_name>/inventory_items/<path:item_id>/activate")
def activate_inventory_item(shop_name: str, item_id: str) -> Any:
    shop = _shop(shop_name)
    body = _body()
    with _store().transaction(shop):
        level, errors = inv.activate_inventory(shop, item_id, body.get("location_id"), body.get("available"))
        if errors:
            raise inv.Refused(errors)
        assert level is not None
        return jsonify(payloads.inventory_level_json(shop, level))


def _quantity_change(shop: Shop, body: dict[str, Any]) -> Any:
    """The merchant's own edit at any location: no compare-and-swap (the admin shows the live number); an item
    not stocked there yet is stocked first, as the admin does when a quantity is entered."""
    entry = {"inventoryItemId": body.get("inventory_item_id"), "locationId": body.get("location_id")}
    item, location = inv.find_item(shop, entry["inventoryItemId"]), inv.find_location(shop, entry["locationId"])
    level = item.levels.get(location.id) if item is not None and location is not None else None
    if item is not None and location is not None and (level is None or not level.is_active):
        _, errors = inv.activate_inventory(shop, item.id, location.id)
        if errors:
            raise inv.Refused(errors)
    reason = body.get("reason") or "correction"
    if "delta" in body:
        data = {
            "name": body.get("name") or "available",
            "reason": reason,
            "changes": [{**entry, "delta": int(body["delta"])}],
        }
        if body.get("ledger_document_uri"):
            data["changes"][0]["ledgerDocumentUri"] = body["ledger_document_uri"]
        return inv.adjust_quantities(shop, MERCHANT_ACTOR, data)
    quantity = {
        **entry,
        "quantity": int(body.get("quantity", 0)),
        "changeFromQuantity": body.get("change_from_quantity"),
    }
    return inv.set_quantities(
        shop, MERCHANT_ACTOR, {"name": body.get("name") or "available", "reason": reason, "quantities": [quantity]}
    )


@bp.get("/shops/<shop_name>/inventory_adjustments")
def list_inventory_adjustments(shop_name: str) -> Any:
    """Every inventory adjustment group, and the `@idempotent` keys the shop's mutations kept (with how many
    repeats each answered): what a test checks to see a change applied once."""
    shop = _shop(shop_name)
    with _store().lock:
        groups = [
            {
                "id": payloads.gid("InventoryAdjustmentGroup", g.id),
                "reason": g.reason,
                "reference_document_uri": g.reference_document_uri,
                "app": g.install_id is not None,
                "changes": [
                    {
                        "name": c.name,
                        "delta": c.delta,
                        "inventory_item_id": payloads.gid("InventoryItem", c.item_id),
                        "location_id": payloads.gid("Location", c.location_id),
                    }
                    for c in g.changes
                ],
            }
            for g in shop.adjustment_groups.values()
        ]
        keys = [
            {"mutation": root, "key": key, "replays": call.replays}
            for (_, root, key), call in shop.idempotent_calls.items()
        ]
        return jsonify({"adjustment_groups": groups, "idempotency_keys": keys})


@bp.post("/shops/<shop_name>/inventory")
def edit_quantity(shop_name: str) -> Any:
    """`{inventory_item_id, location_id, quantity | delta, name?, reason?}`: set or adjust one quantity."""
    shop = _shop(shop_name)
    body = _body()
    with _store().transaction(shop):
        _quantity_change(shop, body)
        item = inv.find_item(shop, body.get("inventory_item_id"))
        assert item is not None
        return jsonify(payloads.inventory_item_json(shop, item))
