"""Fulfillments as the recorded store makes them: who may fulfil where, the order of fulfillmentCreate's checks,
unknown ids as userErrors, what a cancelled fulfillment still takes, and the built-in manual service."""

from __future__ import annotations

MERCHANT_MANAGED = (
    "write_fulfillments,read_merchant_managed_fulfillment_orders,write_merchant_managed_fulfillment_orders"
)

FULFILLMENT = """id name status displayStatus trackingInfo(first: 5) { number url company }
fulfillmentLineItems(first: 10) { nodes { quantity lineItem { id sku } } }
service { id handle serviceName type trackingSupport location { id name } }
location { id name } originAddress { address1 countryCode }"""
CREATE = f"""mutation($groups: [FulfillmentOrderLineItemsInput!]!, $tracking: FulfillmentTrackingInput) {{
  fulfillmentCreate(fulfillment: {{lineItemsByFulfillmentOrder: $groups, trackingInfo: $tracking}}) {{
    fulfillment {{ {FULFILLMENT} }} userErrors {{ field message }}
  }}
}}"""
CANCEL = """mutation($id: ID!) { fulfillmentCancel(id: $id) {
  fulfillment { id status displayStatus trackingInfo { number } } userErrors { field message } } }"""
TRACKING = """mutation($id: ID!, $tracking: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking) {
    fulfillment { id status displayStatus trackingInfo(first: 5) { number url company } } userErrors { field message }
  }
}"""
TRACKING_V2 = TRACKING.replace("fulfillmentTrackingInfoUpdate(", "fulfillmentTrackingInfoUpdateV2(")
EVENT = """mutation($id: ID!, $status: FulfillmentEventStatus!) {
  fulfillmentEventCreate(fulfillmentEvent: {fulfillmentId: $id, status: $status, message: "scan"}) {
    fulfillmentEvent { id status message } userErrors { field message }
  }
}"""
READ = """query($id: ID!) { fulfillment(id: $id) { status displayStatus events(first: 5) { nodes { status } } } }"""
SPLIT = """mutation($splits: [FulfillmentOrderSplitInput!]!) {
  fulfillmentOrderSplit(fulfillmentOrderSplits: $splits) {
    fulfillmentOrderSplits { fulfillmentOrder { id } remainingFulfillmentOrder { id lineItems(first: 5) {
      nodes { id } } } }
    userErrors { field message }
  }
}"""
ORDER_FOS = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 10) { nodes { id status
  lineItems(first: 5) { nodes { totalQuantity remainingQuantity } } } } } }"""


def run(h, document: str, variables: dict, token: str | None = None) -> dict:
    body = h.gql(document, variables, token)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def merchant_app(h) -> str:
    """A second app, installed with the merchant-managed scopes (as the recorder's app was)."""
    response = h.client.post(f"/_sandbox/shops/{h.shop}/app_installs", json={"scopes": MERCHANT_MANAGED})
    return response.get_json()["access_token"]


def at_shop_location(h) -> dict:
    """An order's one fulfillment order at the merchant's own "Shop location" (with the order's id)."""
    order = h.order([{"sku": "SKU-1", "quantity": 2, "location_id": h.shop_location}])
    return {**order["fulfillment_orders"][0], "order_id": order["id"]}


def legacy_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


def test_an_app_with_the_merchant_managed_scope_fulfils_at_a_merchant_location(h):
    fo = at_shop_location(h)
    refused = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo["id"]}]})  # the harness app lacks the scope
    assert refused["fulfillment"] is None and "own locations" in refused["userErrors"][0]["message"]
    tracking = {"number": "T-1", "url": "https://example.com/track/T-1", "company": "Hermes"}
    made = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo["id"]}], "tracking": tracking}, merchant_app(h))
    assert made["userErrors"] == []
    fulfillment = made["fulfillment"]
    assert (fulfillment["name"], fulfillment["status"], fulfillment["displayStatus"]) == (
        "#1001-F1",
        "SUCCESS",
        "FULFILLED",
    )
    assert fulfillment["trackingInfo"] == [tracking]
    assert fulfillment["location"] == {"id": h.shop_location, "name": "Shop location"}
    assert fulfillment["originAddress"] is None
    # The merchant's own locations are fulfilled by the store's built-in manual service (as recorded).
    assert fulfillment["service"] == {
        "id": "gid://shopify/FulfillmentService/manual",
        "handle": "manual",
        "serviceName": "Manual",
        "type": "MANUAL",
        "trackingSupport": False,
        "location": {"id": h.shop_location, "name": "Shop location"},
    }
    assert h.fo(fo["id"])["status"] == "CLOSED"


def test_every_shop_lists_the_manual_service_first(h):
    fields = "id handle serviceName callbackUrl trackingSupport inventoryManagement requiresShippingMethod type"
    services = run(h, f"{{ shop {{ fulfillmentServices {{ {fields} location {{ id name }} }} }} }}", {})
    assert services["fulfillmentServices"][0] == {
        "id": "gid://shopify/FulfillmentService/manual",
        "handle": "manual",
        "serviceName": "Manual",
        "callbackUrl": None,
        "trackingSupport": False,
        "inventoryManagement": False,
        "requiresShippingMethod": True,
        "type": "MANUAL",
        "location": {"id": h.shop_location, "name": "Shop location"},
    }
    assert [(s["serviceName"], s["type"]) for s in services["fulfillmentServices"][1:]] == [("Acme 3PL", "THIRD_PARTY")]
    one = run(h, '{ fulfillmentService(id: "gid://shopify/FulfillmentService/manual") { handle } }', {})
    assert one == {"handle": "manual"}


def test_fulfillment_create_checks_quantities_then_ids_then_order_and_location(h):
    token = merchant_app(h)
    fo = at_shop_location(h)
    line = fo["line_items"][0]["id"]
    unknown = "gid://shopify/FulfillmentOrder/999999999"
    # A zero quantity in a later group is found before the unknown fulfillment order next to it.
    groups = [
        {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line, "quantity": 1}]},
        {"fulfillmentOrderId": unknown, "fulfillmentOrderLineItems": [{"id": line, "quantity": 0}]},
    ]
    assert run(h, CREATE, {"groups": groups}, token)["userErrors"] == [
        {
            "field": ["fulfillment", "lineItemsByFulfillmentOrder", "1", "fulfillmentOrderLineItems", "0", "quantity"],
            "message": "Quantity must be greater than 0",
        }
    ]
    groups[1] = {"fulfillmentOrderId": unknown}
    assert run(h, CREATE, {"groups": groups}, token)["userErrors"] == [
        {"field": ["fulfillment"], "message": "Fulfillment order does not exist."}
    ]
    other = at_shop_location(h)
    groups[1] = {"fulfillmentOrderId": other["id"]}
    orders = sorted(legacy_id(f["order_id"]) for f in (fo, other))
    assert run(h, CREATE, {"groups": groups}, token)["userErrors"] == [
        {
            "field": ["fulfillment"],
            "message": f"All fulfillment orders must belong to the same order. Multiple orders with ids [{orders[0]},"
            f" {orders[1]}] were found.",
        }
    ]
    no_line = {"id": "gid://shopify/FulfillmentOrderLineItem/999999", "quantity": 1}
    wrong_line = [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [no_line]}]
    assert run(h, CREATE, {"groups": wrong_line}, token)["userErrors"] == [
        {"field": ["fulfillment"], "message": "Fulfillment order line item does not exist."}
    ]
    too_many = [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line, "quantity": 3}]}]
    assert run(h, CREATE, {"groups": too_many}, token)["userErrors"] == [
        {"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity requested."}
    ]
    assert h.fo(fo["id"])["lineItems"]["nodes"][0]["remainingQuantity"] == 2  # nothing was taken


def test_one_fulfillment_over_two_fulfillment_orders_has_one_line_per_line_item(h):
    token = merchant_app(h)
    fo = at_shop_location(h)
    line = fo["line_items"][0]["id"]
    split = run(
        h,
        SPLIT,
        {"splits": [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line, "quantity": 1}]}]},
        h.merchant_token,
    )["fulfillmentOrderSplits"][0]
    rest = split["remainingFulfillmentOrder"]
    groups = [
        {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line, "quantity": 1}]},
        {
            "fulfillmentOrderId": rest["id"],
            "fulfillmentOrderLineItems": [{"id": rest["lineItems"]["nodes"][0]["id"], "quantity": 1}],
        },
    ]
    made = run(h, CREATE, {"groups": groups}, token)
    assert made["userErrors"] == []
    assert [n["quantity"] for n in made["fulfillment"]["fulfillmentLineItems"]["nodes"]] == [2]
    # As recorded: both fulfillment orders close and the order reads as fulfilled.
    after = h.gql(
        "query($id: ID!) { order(id: $id) { displayFulfillmentStatus fulfillmentOrders(first: 10) {"
        " nodes { status lineItems(first: 5) { nodes { remainingQuantity } } } } } }",
        {"id": fo["order_id"]},
    )["data"]["order"]
    assert after["displayFulfillmentStatus"] == "FULFILLED"
    assert [(f["status"], f["lineItems"]["nodes"]) for f in after["fulfillmentOrders"]["nodes"]] == [
        ("CLOSED", [{"remainingQuantity": 0}]),
        ("CLOSED", [{"remainingQuantity": 0}]),
    ]
    # Cancelling gives each closed fulfillment order its quantities back and opens one new one for the work.
    assert run(h, CANCEL, {"id": made["fulfillment"]["id"]}, token)["userErrors"] == []
    fos = run(h, ORDER_FOS, {"id": fo["order_id"]})["fulfillmentOrders"]["nodes"]
    assert [
        (f["status"], [(n["totalQuantity"], n["remainingQuantity"]) for n in f["lineItems"]["nodes"]]) for f in fos
    ] == [
        ("CLOSED", [(1, 1)]),
        ("CLOSED", [(1, 1)]),
        ("OPEN", [(2, 2)]),
    ]


def test_unknown_fulfillment_ids_are_user_errors(h):
    missing = "gid://shopify/Fulfillment/999999999"
    tracking = {"number": "X", "company": "UPS"}
    assert run(h, CANCEL, {"id": missing}) == {
        "fulfillment": None,
        "userErrors": [{"field": ["id"], "message": "Fulfillment not found."}],
    }
    for document in (TRACKING, TRACKING_V2):
        assert run(h, document, {"id": missing, "tracking": tracking}) == {
            "fulfillment": None,
            "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}],
        }
    assert run(h, EVENT, {"id": missing, "status": "IN_TRANSIT"}) == {
        "fulfillmentEvent": None,
        "userErrors": [{"field": ["fulfillmentEvent", "fulfillmentId"], "message": "Fulfillment does not exist."}],
    }


def test_a_cancelled_fulfillment_takes_events_and_tracking_and_a_second_cancel(h):
    token = merchant_app(h)
    fo = at_shop_location(h)
    created = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo["id"]}], "tracking": {"number": "A"}}, token)
    fulfillment = created["fulfillment"]["id"]
    closed = "query($id: ID!) { order(id: $id) { closed closedAt } }"
    assert run(h, closed, {"id": fo["order_id"]})["closed"] is True  # all shipped: the store closes the order
    first = run(h, CANCEL, {"id": fulfillment}, token)
    assert run(h, closed, {"id": fo["order_id"]}) == {"closed": False, "closedAt": None}
    assert first["fulfillment"] == {
        "id": fulfillment,
        "status": "CANCELLED",
        "displayStatus": "CANCELED",
        "trackingInfo": [{"number": "A"}],
    }
    assert run(h, CANCEL, {"id": fulfillment}, token) == first
    updated = run(h, TRACKING, {"id": fulfillment, "tracking": {"number": "B", "company": "UPS"}}, token)
    assert updated["userErrors"] == []
    assert (
        updated["fulfillment"]["status"] == "CANCELLED" and updated["fulfillment"]["trackingInfo"][0]["number"] == "B"
    )
    event = run(h, EVENT, {"id": fulfillment, "status": "DELIVERED"}, token)
    assert event["userErrors"] == [] and event["fulfillmentEvent"]["status"] == "DELIVERED"
    read = run(h, READ, {"id": fulfillment}, token)
    assert read == {"status": "CANCELLED", "displayStatus": "CANCELED", "events": {"nodes": [{"status": "DELIVERED"}]}}


def test_several_tracking_numbers(h):
    token = merchant_app(h)
    fo = at_shop_location(h)
    tracking = {"numbers": ["N1", "N2"], "urls": ["https://t.example/1", "https://t.example/2"], "company": "Hermes"}
    made = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo["id"]}], "tracking": tracking}, token)
    assert made["fulfillment"]["trackingInfo"] == [
        {"number": "N1", "url": "https://t.example/1", "company": "Hermes"},
        {"number": "N2", "url": "https://t.example/2", "company": "Hermes"},
    ]
    again = {"numbers": ["M1", "M2"], "urls": ["https://t.example/m1", "https://t.example/m2"], "company": "DHL"}
    updated = run(h, TRACKING_V2, {"id": made["fulfillment"]["id"], "tracking": again}, token)
    assert [t["number"] for t in updated["fulfillment"]["trackingInfo"]] == ["M1", "M2"]
    assert {t["company"] for t in updated["fulfillment"]["trackingInfo"]} == {"DHL"}


def test_marking_fulfilled_with_a_quantity_that_is_no_number_is_refused(h):
    fo = at_shop_location(h)
    line = fo["line_items"][0]["id"]
    for quantity in ("two", None, 0, True):
        refused = h.act(fo["id"], "mark_fulfilled", expect=422, line_items=[{"id": line, "quantity": quantity}])
        assert refused["user_errors"][0]["message"] == "Quantity must be greater than 0"
    h.act("gid://shopify/FulfillmentOrder/999999", "mark_fulfilled", expect=404)


def test_the_deprecated_fulfillment_create_v2_still_fulfils(h):
    fo = at_shop_location(h)
    v2 = CREATE.replace("fulfillmentCreate(", "fulfillmentCreateV2(")
    made = run(h, v2, {"groups": [{"fulfillmentOrderId": fo["id"]}]}, merchant_app(h))
    assert made["userErrors"] == [] and made["fulfillment"]["status"] == "SUCCESS"
