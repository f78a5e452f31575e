"""The merchant CLI turns commands into the REST API's requests."""

from __future__ import annotations

from sandbox.cli import build_parser, request_for


def parse(*argv: str):
    return request_for(build_parser().parse_args(["--shop", "demo.myshopify.com", *argv]))


def test_commands_map_to_rest_calls():
    assert parse("create-order", "--sku", "A:2", "--sku", "B") == (
        "POST",
        "/shops/demo.myshopify.com/orders",
        {"line_items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}], "paid": True, "note": None},
    )
    method, path, body = parse(
        "request",
        "gid://shopify/FulfillmentOrder/1001",
        "--message",
        "hi",
        "--item",
        "gid://shopify/FulfillmentOrderLineItem/7:1",
    )
    assert path == "/shops/demo.myshopify.com/fulfillment_orders/1001/submit_fulfillment_request"
    assert body["message"] == "hi" and body["line_items"] == [
        {"id": "gid://shopify/FulfillmentOrderLineItem/7", "quantity": 1}
    ]
    assert parse("withdraw", "1001")[1].endswith("/1001/cancel")
    assert parse("reset", "1001")[1].endswith("/1001/cancel")
    assert parse("mark-fulfilled", "1001", "--tracking-number", "T")[2]["tracking_number"] == "T"
    assert parse("show-order", "gid://shopify/Order/5") == ("GET", "/shops/demo.myshopify.com/orders/5", None)
    assert parse("cancel-order", "gid://shopify/Order/5", "--reason", "CUSTOMER") == (
        "POST",
        "/shops/demo.myshopify.com/orders/5/cancel",
        {"reason": "CUSTOMER", "staff_note": None},
    )


def test_the_shop_is_the_local_demo_s_unless_told(monkeypatch):
    monkeypatch.delenv("SANDBOX_SHOP", raising=False)
    assert build_parser().parse_args(["show-order", "1"]).shop == "demo-shop.myshopify.com"


def test_edit_order_sets_quantities_and_adds_items():
    assert parse("edit-order", "1001", "--set", "gid://shopify/LineItem/7:1", "--add", "SKU-3:2", "--add", "SKU-4") == (
        "POST",
        "/shops/demo.myshopify.com/orders/1001/edit",
        {
            "line_items": [{"id": "gid://shopify/LineItem/7", "quantity": 1}],
            "add": [{"sku": "SKU-3", "quantity": 2}, {"sku": "SKU-4", "quantity": 1}],
            "note": None,
        },
    )
