"""`python -m sandbox.cli ...`: act as the merchant on a running sandbox, over its REST API (prints JSON).

    python -m sandbox.cli create-order --sku SKU-1:2 --sku SKU-2
    python -m sandbox.cli --shop other.myshopify.com create-shop
    python -m sandbox.cli request 1001 --message "gift wrap"
    python -m sandbox.cli show-order 1001
    python -m sandbox.cli edit-order 1001 --set 1002:1 --add SKU-3:2
    python -m sandbox.cli create-product "T-shirt" --sku TSHIRT-BLK-M:10
    python -m sandbox.cli add-location "Back room" && python -m sandbox.cli set-stock 1001 1002 5

The sandbox's URL comes from --url, else SANDBOX_URL, else http://127.0.0.1:8700; the shop from --shop, else
SANDBOX_SHOP, else the shop `python3 dev.py up` connects (demo-shop.myshopify.com).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests

DEMO_SHOP = "demo-shop.myshopify.com"  # the shop the local demo connects


def _items(values: list[str] | None) -> list[dict[str, Any]] | None:
    """`ID:QTY` pairs (fulfillment order line item ids) for partial actions."""
    if not values:
        return None
    items = []
    for value in values:
        id_, _, qty = value.rpartition(":")
        items.append({"id": id_, "quantity": int(qty)})
    return items


def _id(value: str) -> str:
    """Numbers go into URL paths as they are; gids are cut to their number."""
    return value.rsplit("/", 1)[-1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.cli", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SANDBOX_URL", "http://127.0.0.1:8700"))
    parser.add_argument("--shop", default=os.environ.get("SANDBOX_SHOP", DEMO_SHOP))
    sub = parser.add_subparsers(dest="command", required=True)

    shop = sub.add_parser("create-shop", help="create the shop (idempotent)")
    shop.add_argument("--plan", default="standard")
    shop.add_argument("--workflow", default="fulfillment_orders", choices=["fulfillment_orders", "legacy"])
    shop.add_argument("--auto-fulfill", action="store_true")

    order = sub.add_parser("create-order", help="place a paid order")
    order.add_argument("--sku", action="append", required=True, help="SKU or SKU:QTY (repeatable)")
    order.add_argument("--location", help="location gid for every line (default: the first service's)")
    order.add_argument("--unpaid", action="store_true")
    order.add_argument("--note")

    for name, help_text in (
        ("request", "submit a fulfillment request"),
        ("cancel-request", "ask the service to cancel an accepted request"),
        ("withdraw", "cancel a request the service has not accepted yet"),
        ("reset", "reset to unfulfilled while a cancellation is requested"),
        ("release", "release the holds"),
    ):
        action = sub.add_parser(name, help=help_text)
        action.add_argument("fulfillment_order")
        action.add_argument("--message")
        action.add_argument("--notify-customer", action="store_true")
        action.add_argument("--item", action="append", help="FULFILLMENT_ORDER_LINE_ITEM_ID:QTY (repeatable)")

    move = sub.add_parser("move", help="assign to another location")
    move.add_argument("fulfillment_order")
    move.add_argument("location")
    move.add_argument("--item", action="append")

    hold = sub.add_parser("hold", help="put on hold")
    hold.add_argument("fulfillment_order")
    hold.add_argument("--reason", default="OTHER")
    hold.add_argument("--notes")

    fulfilled = sub.add_parser("mark-fulfilled", help="mark items fulfilled by hand")
    fulfilled.add_argument("fulfillment_order")
    fulfilled.add_argument("--tracking-number")
    fulfilled.add_argument("--company")
    fulfilled.add_argument("--tracking-url")
    fulfilled.add_argument("--notify-customer", action="store_true")
    fulfilled.add_argument("--item", action="append")

    show = sub.add_parser("show-order", help="the order with its fulfillment orders and timeline")
    show.add_argument("order")

    edit = sub.add_parser("edit-order", help="change line items' quantities or add items (refused while requested)")
    edit.add_argument("order")
    edit.add_argument("--set", action="append", help="LINE_ITEM_ID:QTY, the line's new quantity (repeatable)")
    edit.add_argument("--add", action="append", help="SKU[:QTY], a new line item (repeatable)")
    edit.add_argument("--note")

    cancel = sub.add_parser("cancel-order", help="cancel the whole order (refused while anything is fulfilled)")
    cancel.add_argument("order")
    cancel.add_argument(
        "--reason", default="OTHER", choices=["CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"]
    )
    cancel.add_argument("--staff-note")
    _inventory_commands(sub)
    return parser


def _inventory_commands(sub: Any) -> None:
    """The merchant's locations, products and stock."""
    add = sub.add_parser("add-location", help="add a merchant location")
    add.add_argument("name")
    add.add_argument("--country", default="NO")
    add.add_argument("--city")
    add.add_argument("--address1")
    add.add_argument("--zip")
    add.add_argument("--no-online-orders", action="store_true", help="does not fulfil online orders")

    edit = sub.add_parser("edit-location", help="rename a location or change whether it fulfils online orders")
    edit.add_argument("location")
    edit.add_argument("--name")
    edit.add_argument("--online-orders", choices=["yes", "no"])

    for name, help_text in (("activate-location", "activate a location"), ("delete-location", "delete a location")):
        sub.add_parser(name, help=help_text).add_argument("location")
    deactivate = sub.add_parser("deactivate-location", help="deactivate a location (its stock moves)")
    deactivate.add_argument("location")
    deactivate.add_argument("--destination", help="location that takes its stock")

    product = sub.add_parser("create-product", help="a product with one variant per --sku, tracked unless told")
    product.add_argument("title")
    product.add_argument("--sku", action="append", help="SKU or SKU:AVAILABLE at the shop location (repeatable)")
    product.add_argument("--untracked", action="store_true")

    stock = sub.add_parser("set-stock", help="set a quantity of an item at a location")
    stock.add_argument("inventory_item")
    stock.add_argument("location")
    stock.add_argument("quantity", type=int)
    stock.add_argument("--name", default="available", choices=["available", "on_hand"])

    adjust = sub.add_parser("adjust-stock", help="add to (or take from) a quantity of an item at a location")
    adjust.add_argument("inventory_item")
    adjust.add_argument("location")
    adjust.add_argument("delta", type=int)
    adjust.add_argument("--name", default="available")
    adjust.add_argument("--ledger-document-uri")


def inventory_request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None] | None:
    shop = args.shop
    locations = f"/shops/{shop}/locations"
    if args.command == "add-location":
        address = {"country_code": args.country, "city": args.city, "address1": args.address1, "zip": args.zip}
        body = {"name": args.name, "address": address, "fulfills_online_orders": not args.no_online_orders}
        return "POST", locations, body
    if args.command == "edit-location":
        body: dict[str, Any] = {"name": args.name} if args.name else {}
        if args.online_orders:
            body["fulfills_online_orders"] = args.online_orders == "yes"
        return "PATCH", f"{locations}/{_id(args.location)}", body
    if args.command == "activate-location":
        return "POST", f"{locations}/{_id(args.location)}/activate", {}
    if args.command == "deactivate-location":
        return "POST", f"{locations}/{_id(args.location)}/deactivate", {"destination_location_id": args.destination}
    if args.command == "delete-location":
        return "DELETE", f"{locations}/{_id(args.location)}", None
    if args.command == "create-product":
        variants = []
        for value in args.sku or []:
            sku, _, qty = value.partition(":")
            variant: dict[str, Any] = {"sku": sku, "tracked": not args.untracked, "title": sku}
            if qty:
                variant["available"] = int(qty)
            variants.append(variant)
        return "POST", f"/shops/{shop}/products", {"title": args.title, "variants": variants or None}
    if args.command in ("set-stock", "adjust-stock"):
        body = {"inventory_item_id": args.inventory_item, "location_id": args.location, "name": args.name}
        if args.command == "set-stock":
            body["quantity"] = args.quantity
        else:
            body["delta"] = args.delta
            body["ledger_document_uri"] = args.ledger_document_uri
        return "POST", f"/shops/{shop}/inventory", body
    return None


def request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path under /_sandbox, JSON body) for the parsed command."""
    shop = args.shop
    if args.command == "create-shop":
        body = {"domain": shop, "plan": args.plan, "workflow": args.workflow, "auto_fulfill": args.auto_fulfill}
        return "POST", "/shops", body
    if args.command == "create-order":
        lines = []
        for value in args.sku:
            sku, _, qty = value.partition(":")
            line: dict[str, Any] = {"sku": sku, "quantity": int(qty or 1)}
            if args.location:
                line["location_id"] = args.location
            lines.append(line)
        return "POST", f"/shops/{shop}/orders", {"line_items": lines, "paid": not args.unpaid, "note": args.note}
    if args.command == "show-order":
        return "GET", f"/shops/{shop}/orders/{_id(args.order)}", None
    if args.command == "edit-order":
        added = [value.partition(":") for value in args.add or []]
        body = {
            "line_items": _items(args.set) or [],
            "add": [{"sku": sku, "quantity": int(qty or 1)} for sku, _, qty in added],
            "note": args.note,
        }
        return "POST", f"/shops/{shop}/orders/{_id(args.order)}/edit", body
    if args.command == "cancel-order":
        body = {"reason": args.reason, "staff_note": args.staff_note}
        return "POST", f"/shops/{shop}/orders/{_id(args.order)}/cancel", body
    inventory = inventory_request_for(args)
    if inventory is not None:
        return inventory
    fo = f"/shops/{shop}/fulfillment_orders/{_id(args.fulfillment_order)}"
    if args.command == "request":
        body = {"message": args.message, "notify_customer": args.notify_customer, "line_items": _items(args.item)}
        return "POST", f"{fo}/submit_fulfillment_request", body
    if args.command == "cancel-request":
        return "POST", f"{fo}/submit_cancellation_request", {"message": args.message}
    if args.command in ("withdraw", "reset"):
        return "POST", f"{fo}/cancel", {}
    if args.command == "release":
        return "POST", f"{fo}/release_hold", {}
    if args.command == "move":
        return "POST", f"{fo}/move", {"location_id": args.location, "line_items": _items(args.item)}
    if args.command == "hold":
        return "POST", f"{fo}/hold", {"reason": args.reason, "reason_notes": args.notes}
    if args.command == "mark-fulfilled":
        body = {
            "tracking_number": args.tracking_number,
            "company": args.company,
            "url": args.tracking_url,
            "notify_customer": args.notify_customer,
            "line_items": _items(args.item),
        }
        return "POST", f"{fo}/mark_fulfilled", body
    raise SystemExit(f"unknown command {args.command}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    method, path, body = request_for(args)
    response = requests.request(method, f"{args.url.rstrip('/')}/_sandbox{path}", json=body, timeout=30)
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
