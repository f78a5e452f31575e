"""JSON shapes in snake_case: webhook payloads (close to the store's documented examples) and the records the
sandbox's own REST API returns. Pure functions of the records; they never change state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox import inventory
from sandbox.model import (
    QUANTITY_NAMES,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentService,
    InventoryItem,
    InventoryLevel,
    Location,
    MerchantRequest,
    Order,
    Product,
    Shop,
    WebhookSubscription,
    gid,
    service_gid,
)


def iso(value: datetime | None) -> str | None:
    """Timestamps as the store writes them: `2026-07-01T12:00:00Z`."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------
# Webhook payloads
# ---------------------------------------------------------------------------------------------------------


def fulfillment_order_brief(fo: FulfillmentOrder | None) -> dict[str, Any] | None:
    """How fulfillment order webhooks name a fulfillment order: gid and lower-case statuses."""
    if fo is None:
        return None
    return {
        "id": gid("FulfillmentOrder", fo.id),
        "status": fo.status.lower(),
        "request_status": fo.request_status.lower(),
        "assigned_location_id": gid("Location", fo.location_id),
    }


def merchant_request_brief(request: MerchantRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {
        "id": gid("FulfillmentOrderMerchantRequest", request.id),
        "message": request.message,
        "kind": request.kind.lower(),
        "request_options": request.request_options,
    }


def line_items_requested(fo: FulfillmentOrder, quantities: dict[int, int]) -> list[dict[str, Any]]:
    return [
        {"id": gid("FulfillmentOrderLineItem", li.id), "quantity": quantities[li.id]}
        for li in fo.line_items
        if li.id in quantities
    ]


def fulfillment_rest(shop: Shop, fulfillment: Fulfillment) -> dict[str, Any]:
    """A fulfillment as the `fulfillments/create` and `fulfillments/update` topics carry it."""
    order = shop.orders[fulfillment.order_id]
    first = fulfillment.tracking[0] if fulfillment.tracking else None
    service = next(
        (s for s in shop.services.values() if s.location_id == fulfillment.location_id),
        None,
    )
    items = []
    for fli in fulfillment.line_items:
        line = order.line_item(fli.line_item_id)
        items.append(
            {
                "id": fli.line_item_id,
                "admin_graphql_api_id": gid("LineItem", fli.line_item_id),
                "sku": line.sku if line else None,
                "name": line.name if line else None,
                "title": line.title if line else None,
                "quantity": fli.quantity,
            }
        )
    return {
        "id": fulfillment.id,
        "admin_graphql_api_id": gid("Fulfillment", fulfillment.id),
        "order_id": order.id,
        "name": fulfillment.name,
        "status": fulfillment.status.lower(),
        "shipment_status": fulfillment.events[-1].status.lower() if fulfillment.events else None,
        "service": service.handle if service else "manual",
        "location_id": fulfillment.location_id,
        "created_at": iso(fulfillment.created_at),
        "updated_at": iso(fulfillment.updated_at),
        "tracking_company": first.company if first else None,
        "tracking_number": first.number if first else None,
        "tracking_numbers": [t.number for t in fulfillment.tracking if t.number],
        "tracking_url": first.url if first else None,
        "tracking_urls": [t.url for t in fulfillment.tracking if t.url],
        "line_items": items,
    }


def shop_rest(shop: Shop) -> dict[str, Any]:
    """The shop as `app/uninstalled` carries it."""
    return {
        "id": shop.id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "plan_name": shop.plan,
    }


# ---------------------------------------------------------------------------------------------------------
# The sandbox's REST API
# ---------------------------------------------------------------------------------------------------------


def location_json(location: Location) -> dict[str, Any]:
    return {
        "id": gid("Location", location.id),
        "name": location.name,
        "is_active": location.is_active,
        "fulfillment_service": (
            service_gid(location.fulfillment_service_id) if location.fulfillment_service_id else None
        ),
    }


def service_json(service: FulfillmentService) -> dict[str, Any]:
    return {
        "id": service.graphql_id,
        "name": service.name,
        "handle": service.handle,
        "callback_url": service.callback_url,
        "location_id": gid("Location", service.location_id),
        "tracking_support": service.tracking_support,
        "inventory_management": service.inventory_management,
    }


def subscription_json(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": gid("WebhookSubscription", subscription.id),
        "topic": subscription.topic,
        "uri": subscription.uri,
        "format": subscription.format,
        "created_at": iso(subscription.created_at),
    }


def fulfillment_order_json(shop: Shop, fo: FulfillmentOrder, supported_actions: list[str]) -> dict[str, Any]:
    order = shop.orders[fo.order_id]
    lines = []
    for li in fo.line_items:
        line = order.line_item(li.line_item_id)
        lines.append(
            {
                "id": gid("FulfillmentOrderLineItem", li.id),
                "line_item_id": gid("LineItem", li.line_item_id),
                "sku": line.sku if line else None,
                "total_quantity": li.total_quantity,
                "remaining_quantity": li.remaining_quantity,
            }
        )
    return {
        "id": gid("FulfillmentOrder", fo.id),
        "order_id": gid("Order", fo.order_id),
        "status": fo.status,
        "request_status": fo.request_status,
        "assigned_location_id": gid("Location", fo.location_id),
        "line_items": lines,
        "merchant_requests": [
            {
                "id": gid("FulfillmentOrderMerchantRequest", r.id),
                "kind": r.kind,
                "message": r.message,
                "request_options": r.request_options,
                "sent_at": iso(r.sent_at),
            }
            for r in fo.merchant_requests
        ],
        "holds": [
            {"id": gid("FulfillmentHold", h.id), "reason": h.reason, "reason_notes": h.reason_notes} for h in fo.holds
        ],
        "supported_actions": supported_actions,
        "progress_reported": fo.progress_reported,
        "fulfill_at": iso(fo.fulfill_at),
        "updated_at": iso(fo.updated_at),
    }


def fulfillment_json(shop: Shop, fulfillment: Fulfillment) -> dict[str, Any]:
    order = shop.orders[fulfillment.order_id]
    lines = []
    for fli in fulfillment.line_items:
        line = order.line_item(fli.line_item_id)
        lines.append(
            {
                "line_item_id": gid("LineItem", fli.line_item_id),
                "sku": line.sku if line else None,
                "quantity": fli.quantity,
            }
        )
    return {
        "id": gid("Fulfillment", fulfillment.id),
        "name": fulfillment.name,
        "status": fulfillment.status,
        "display_status": fulfillment.display_status,
        "created_by": fulfillment.created_by,
        "location_id": gid("Location", fulfillment.location_id),
        "tracking_info": [{"company": t.company, "number": t.number, "url": t.url} for t in fulfillment.tracking],
        "line_items": lines,
        "fulfillment_order_ids": [gid("FulfillmentOrder", i) for i in fulfillment.fulfillment_order_ids],
        "events": [
            {"status": e.status, "message": e.message, "happened_at": iso(e.happened_at)} for e in fulfillment.events
        ],
        "delivered_at": iso(fulfillment.delivered_at),
        "in_transit_at": iso(fulfillment.in_transit_at),
    }


def order_json(shop: Shop, order: Order, display_status: str, actions: dict[int, list[str]]) -> dict[str, Any]:
    """The order with its fulfillment orders, fulfillments and timeline; `actions` maps fo id to its
    supported actions (derived by the store, passed in so this module stays free of rules)."""
    return {
        "id": gid("Order", order.id),
        "name": order.name,
        "display_fulfillment_status": display_status,
        "paid": order.paid,
        "note": order.note,
        "email": order.email,
        "phone": order.phone,
        "tags": list(order.tags),
        "currency": order.currency,
        "cancelled_at": iso(order.cancelled_at),
        "cancel_reason": order.cancel_reason,
        "created_at": iso(order.created_at),
        "line_items": [
            {
                "id": gid("LineItem", li.id),
                "sku": li.sku,
                "title": li.title,
                "quantity": li.quantity,
                "current_quantity": li.current_quantity,
                "price": li.price,
            }
            for li in order.line_items
        ],
        "fulfillment_orders": [
            fulfillment_order_json(shop, shop.fulfillment_orders[i], actions.get(i, []))
            for i in order.fulfillment_order_ids
        ],
        "fulfillments": [fulfillment_json(shop, shop.fulfillments[i]) for i in order.fulfillment_ids],
        "timeline": [
            {
                "at": iso(t.at),
                "kind": t.kind,
                "message": t.message,
                "fulfillment_order_id": gid("FulfillmentOrder", t.fulfillment_order_id)
                if t.fulfillment_order_id
                else None,
            }
            for t in order.timeline
        ],
    }


# ---------------------------------------------------------------------------------------------------------
# Locations, products and inventory (the merchant API's views)
# ---------------------------------------------------------------------------------------------------------


def merchant_location_json(location: Location) -> dict[str, Any]:
    address = location.address
    return {
        **location_json(location),
        "fulfills_online_orders": location.fulfills_online_orders,
        "deactivated_at": iso(location.deactivated_at),
        "address": {k: v for k, v in vars(address).items() if v is not None},
    }


def inventory_level_json(shop: Shop, level: InventoryLevel) -> dict[str, Any]:
    names = (*QUANTITY_NAMES, "on_hand")
    return {
        "id": f"gid://shopify/InventoryLevel/{level.location_id}?inventory_item_id={level.item_id}",
        "location_id": gid("Location", level.location_id),
        "is_active": level.is_active,
        "quantities": {name: inventory.quantity(shop, level, name) for name in names},
    }


def inventory_item_json(shop: Shop, item: InventoryItem) -> dict[str, Any]:
    return {
        "id": gid("InventoryItem", item.id),
        "variant_id": gid("ProductVariant", item.variant_id),
        "sku": item.sku,
        "tracked": item.tracked,
        "requires_shipping": item.requires_shipping,
        "levels": [inventory_level_json(shop, level) for level in item.levels.values()],
    }


def product_json(shop: Shop, product: Product) -> dict[str, Any]:
    variants = [shop.variants[i] for i in product.variant_ids]
    return {
        "id": gid("Product", product.id),
        "title": product.title,
        "handle": product.handle,
        "status": product.status,
        "variants": [
            {
                "id": gid("ProductVariant", v.id),
                "title": v.title,
                "sku": v.sku,
                "price": v.price,
                "inventory_item": inventory_item_json(shop, shop.inventory_items[v.inventory_item_id]),
            }
            for v in variants
        ],
    }
