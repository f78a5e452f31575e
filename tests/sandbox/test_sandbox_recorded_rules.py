"""Rules of the store's fulfillment orders and orders that recordings of a real store showed (and the documented
ones they refine): cancelling an open fulfillment order, holds, moves, merges, what a payload shows, orderCancel."""

from __future__ import annotations

import json

LINES = "lineItems(first: 10) { nodes { id totalQuantity remainingQuantity lineItem { fulfillableQuantity } } }"
STATE = f"id status requestStatus fulfillAt fulfillBy supportedActions {{ action }} {LINES}"
CODED = "userErrors { field message code }"
PLAIN = "userErrors { field message }"  # payloads whose errors carry no code


def at_shop_location(h, quantity: int = 2) -> tuple[dict, dict]:
    order = h.order([{"sku": "SKU-1", "quantity": quantity, "location_id": h.shop_location, "price": "20.00"}])
    return order, order["fulfillment_orders"][0]


def hold(h, fo_id: str, handle: str, items: list | None = None) -> dict:
    hold_input = {"reason": "OTHER", "handle": handle}
    if items is not None:
        hold_input["fulfillmentOrderLineItems"] = items
    return h.mutate(
        "fulfillmentOrderHold",
        "id: ID!, fulfillmentHold: FulfillmentOrderHoldInput!",
        {"id": fo_id, "fulfillmentHold": hold_input},
        f"fulfillmentOrder {{ {STATE} }} remainingFulfillmentOrder {{ {STATE} }} {CODED}",
    )


def test_cancelling_an_open_unsubmitted_fulfillment_order_closes_it_and_opens_a_replacement(h):
    _, fo = at_shop_location(h)
    result = h.mutate(
        "fulfillmentOrderCancel",
        "id: ID!",
        {"id": fo["id"]},
        f"fulfillmentOrder {{ {STATE} }} replacementFulfillmentOrder {{ {STATE} }} {CODED}",
    )
    assert result["userErrors"] == []
    closed, replacement = result["fulfillmentOrder"], result["replacementFulfillmentOrder"]
    assert (closed["status"], closed["requestStatus"], closed["lineItems"]["nodes"]) == ("CLOSED", "UNSUBMITTED", [])
    assert (replacement["status"], replacement["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    assert replacement["fulfillAt"] == closed["fulfillAt"] is not None
    again = h.mutate("fulfillmentOrderCancel", "id: ID!", {"id": fo["id"]}, CODED)
    assert again["userErrors"] == [
        {
            "field": None,
            "message": "Fulfillment order is not in cancelable request state and can't be canceled.",
            "code": None,
        }
    ]


def test_holds_check_their_input_first_and_stop_at_ten_per_app(h):
    _, fo = at_shop_location(h)
    for n in range(10):
        assert hold(h, fo["id"], f"hold-{n}")["userErrors"] == []
    bad = hold(h, fo["id"], "hold-10", [{"id": fo["line_items"][0]["id"], "quantity": 0}])
    assert bad["userErrors"][0]["code"] == "INVALID_LINE_ITEM_QUANTITY"
    eleventh = hold(h, fo["id"], "hold-10")
    assert eleventh["userErrors"][0]["code"] == "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED"
    assert "up to 10 holds" in eleventh["userErrors"][0]["message"]


def test_a_partial_hold_splits_the_rest_off_and_releasing_merges_it_back(h):
    order, fo = at_shop_location(h)
    held = hold(h, fo["id"], "some", [{"id": fo["line_items"][0]["id"], "quantity": 1}])
    remaining = held["remainingFulfillmentOrder"]
    assert held["fulfillmentOrder"]["status"] == "ON_HOLD"
    # A held item is not fulfillable; the one split off is.
    assert held["fulfillmentOrder"]["lineItems"]["nodes"][0]["lineItem"]["fulfillableQuantity"] == 1
    assert [a["action"] for a in remaining["supportedActions"]] == [
        "CREATE_FULFILLMENT",
        "REPORT_PROGRESS",
        "MOVE",
        "HOLD",
    ]
    released = h.mutate(
        "fulfillmentOrderReleaseHold", "id: ID!", {"id": fo["id"]}, f"fulfillmentOrder {{ {STATE} }} {CODED}"
    )
    lines = released["fulfillmentOrder"]["lineItems"]["nodes"]
    assert [(n["totalQuantity"], n["remainingQuantity"]) for n in lines] == [(2, 2)]
    folded = h.fo(remaining["id"])
    assert folded["status"] == "CLOSED"
    assert [(n["totalQuantity"], n["remainingQuantity"]) for n in folded["lineItems"]["nodes"]] == [(0, 0)]


def test_moves_are_refused_once_submitted_to_a_3pl_and_after_reported_progress(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    move = "id: ID!, newLocationId: ID!"
    submitted = h.mutate("fulfillmentOrderMove", move, {"id": fo, "newLocationId": h.shop_location}, CODED)
    assert submitted["userErrors"] == [
        {
            "field": None,
            "message": "Cannot move submitted fulfillment order that is at a 3PL fulfillment service.",
            "code": None,
        }
    ]
    _, local = at_shop_location(h)
    h.mutate("fulfillmentOrderReportProgress", "id: ID!", {"id": local["id"]}, CODED)
    moved = h.mutate("fulfillmentOrderMove", move, {"id": local["id"], "newLocationId": h.service_location}, CODED)
    assert moved["userErrors"][0]["code"] == "CANNOT_MOVE_FULFILLMENT_ORDER_WITH_REPORTED_PROGRESS"
    unknown = h.mutate(
        "fulfillmentOrderMove", move, {"id": local["id"], "newLocationId": "gid://shopify/Location/999999"}, CODED
    )
    assert unknown["userErrors"] == [{"field": ["id"], "message": "Location not found.", "code": None}]


def test_a_merge_goes_into_the_first_fulfillment_order_and_refuses_with_the_stores_errors(h):
    _, fo = at_shop_location(h)
    split = h.act(fo["id"], "split", line_items=[{"id": fo["line_items"][0]["id"], "quantity": 1}])
    other = next(f for f in split["fulfillment_orders"] if f["id"] != fo["id"])
    merge = "fulfillmentOrderMergeInputs: [FulfillmentOrderMergeInput!]!"
    payload = f"fulfillmentOrderMerges {{ fulfillmentOrder {{ {STATE} }} }} {CODED}"
    missing = h.mutate(
        "fulfillmentOrderMerge",
        merge,
        {
            "fulfillmentOrderMergeInputs": [
                {
                    "mergeIntents": [
                        {"fulfillmentOrderId": fo["id"]},
                        {"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/999999"},
                    ]
                }
            ]
        },
        payload,
    )
    assert missing["fulfillmentOrderMerges"] is None
    assert missing["userErrors"] == [
        {"field": None, "message": "Fulfillment order does not exist.", "code": "FULFILLMENT_ORDER_NOT_FOUND"}
    ]
    intents = [{"fulfillmentOrderId": fo["id"]}, {"fulfillmentOrderId": other["id"]}]
    merged = h.mutate(
        "fulfillmentOrderMerge", merge, {"fulfillmentOrderMergeInputs": [{"mergeIntents": intents}]}, payload
    )
    into = merged["fulfillmentOrderMerges"][0]["fulfillmentOrder"]
    assert into["id"] == fo["id"] and into["status"] == "OPEN"
    assert [n["totalQuantity"] for n in into["lineItems"]["nodes"]] == [2]
    assert h.fo(other["id"])["status"] == "CLOSED"


def test_a_cancellation_request_answers_the_request_status_from_before_and_reads_the_new_one(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    h.mutate("fulfillmentOrderAcceptFulfillmentRequest", "id: ID!", {"id": fo}, PLAIN)
    asked = h.mutate(
        "fulfillmentOrderSubmitCancellationRequest",
        "id: ID!, message: String",
        {"id": fo, "message": "stop"},
        "fulfillmentOrder { requestStatus merchantRequests(first: 5) { nodes { kind requestOptions responseData } } }"
        f" {PLAIN}",
        h.merchant_token,
    )
    assert asked["fulfillmentOrder"]["requestStatus"] == "ACCEPTED"
    assert asked["fulfillmentOrder"]["merchantRequests"]["nodes"] == [
        {"kind": "FULFILLMENT_REQUEST", "requestOptions": {"notify_customer": False}, "responseData": None},
        {"kind": "CANCELLATION_REQUEST", "requestOptions": {}, "responseData": None},
    ]
    assert h.fo(fo)["requestStatus"] == "CANCELLATION_REQUESTED"


ORDER_CANCEL = "orderId: ID!, reason: OrderCancelReason!, restock: Boolean!"
ORDER_CANCEL_PAYLOAD = "job { id done } orderCancelUserErrors { field message code } userErrors { field message }"


def test_order_cancel_closes_the_open_fulfillment_orders_and_is_refused_while_something_is_fulfilled(h):
    order, fo = at_shop_location(h)
    h.act(fo["id"], "mark_fulfilled")
    refused = h.mutate(
        "orderCancel", ORDER_CANCEL, {"orderId": order["id"], "reason": "OTHER", "restock": True}, ORDER_CANCEL_PAYLOAD
    )
    assert refused["job"] is None
    assert refused["orderCancelUserErrors"] == [
        {"field": ["orderId"], "message": "Cannot cancel an order that has outstanding fulfillments", "code": "INVALID"}
    ]
    assert refused["userErrors"] == [
        {"field": ["orderId"], "message": "Cannot cancel an order that has outstanding fulfillments"}
    ]
    other = h.order()
    done = h.mutate(
        "orderCancel",
        ORDER_CANCEL,
        {"orderId": other["id"], "reason": "CUSTOMER", "restock": True},
        ORDER_CANCEL_PAYLOAD,
    )
    assert done["orderCancelUserErrors"] == [] and done["job"]["done"] is False
    read = h.gql(
        "query($id: ID!) { order(id: $id) { cancelledAt cancelReason closed fulfillmentOrders(first: 5) {"
        " nodes { status } } } }",
        {"id": other["id"]},
    )["data"]["order"]
    assert read["cancelReason"] == "CUSTOMER" and read["cancelledAt"] and read["closed"]
    assert {n["status"] for n in read["fulfillmentOrders"]["nodes"]} == {"CLOSED"}


def test_order_cancel_through_the_merchant_api_is_refused_while_a_service_works_on_it(h):
    order = h.order()
    fo = order["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    h.mutate("fulfillmentOrderAcceptFulfillmentRequest", "id: ID!", {"id": fo}, PLAIN)
    response = h.client.post(f"/_sandbox/shops/{h.shop}/orders/{order['id'].rsplit('/', 1)[-1]}/cancel", json={})
    assert response.status_code == 422
    assert "request a cancellation first" in response.get_json()["user_errors"][0]["message"]


def test_orders_answer_money_tags_and_no_returns(h):
    order = h.order(
        [{"sku": "SKU-1", "quantity": 2, "price": "18.00"}], tags=["b", "a"], email="ada@example.com", currency="CAD"
    )
    read = h.gql(
        "query($id: ID!) { order(id: $id) { email phone tags currencyCode displayFinancialStatus returnStatus"
        " totalPriceSet { shopMoney { amount currencyCode } } totalRefundedSet { shopMoney { amount } }"
        " returns(first: 5) { nodes { id } } } }",
        {"id": order["id"]},
    )["data"]["order"]
    assert read == {
        "email": "ada@example.com",
        "phone": None,
        "tags": ["a", "b"],
        "currencyCode": "CAD",
        "displayFinancialStatus": "PAID",
        "returnStatus": "NO_RETURN",
        "totalPriceSet": {"shopMoney": {"amount": "36.0", "currencyCode": "CAD"}},
        "totalRefundedSet": {"shopMoney": {"amount": "0.0"}},
        "returns": {"nodes": []},
    }


def test_held_by_app_needs_the_read_apps_scope(h):
    _, fo = at_shop_location(h)
    hold(h, fo["id"], "x")
    body = h.gql(
        "query($id: ID!) { fulfillmentOrder(id: $id) { fulfillmentHolds { handle heldByApp { id } } } }",
        {"id": fo["id"]},
    )
    assert body["data"]["fulfillmentOrder"]["fulfillmentHolds"] == [{"handle": "x", "heldByApp": None}]
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_return_mutations_find_no_return(h):
    # The sandbox takes no returns: every return id is unknown, answered as the store answers an unknown one.
    closed = h.mutate("returnClose", "id: ID!", {"id": "gid://shopify/Return/1"}, f"return {{ id }} {CODED}")
    assert closed == {
        "return": None,
        "userErrors": [{"field": ["id"], "message": "Return not found.", "code": "NOT_FOUND"}],
    }
    approved = h.mutate(
        "returnApproveRequest",
        "input: ReturnApproveRequestInput!",
        {"input": {"id": "gid://shopify/Return/1"}},
        f"return {{ id }} {CODED}",
    )
    assert approved["userErrors"][0]["field"] == ["input", "id"]
    read = h.gql(
        "query($id: ID!) { return(id: $id) { id returnLineItems(first: 5) { nodes { id quantity } } } }",
        {"id": "gid://shopify/Return/1"},
    )
    assert read["data"] == {"return": None} and "errors" not in read
    assert read["extensions"]["cost"]["actualQueryCost"] == 1  # a root that found nothing
    # The return types and their inputs are served whole, so introspection answers them as the store does.
    fields = h.gql('{ __type(name: "ReturnLineItem") { fields { name } } }')["data"]["__type"]["fields"]
    assert {"customerNote", "returnReasonNote", "restockingFee"} <= {f["name"] for f in fields}
    assert h.gql('{ __type(name: "ReturnInput") { name } }')["data"]["__type"] == {"name": "ReturnInput"}


def test_reroute_moves_to_an_allowed_location_and_refuses_unknown_ids(h):
    _, fo = at_shop_location(h)
    reroute = "fulfillmentOrderIds: [ID!]!, includedLocationIds: [ID!]"
    payload = "movedFulfillmentOrders { id assignedLocation { location { id } } } userErrors { field message }"
    stays = h.mutate(
        "fulfillmentOrdersReroute",
        reroute,
        {"fulfillmentOrderIds": [fo["id"]], "includedLocationIds": [h.shop_location]},
        payload,
    )
    assert stays == {"movedFulfillmentOrders": [], "userErrors": []}
    moved = h.mutate(
        "fulfillmentOrdersReroute",
        reroute,
        {"fulfillmentOrderIds": [fo["id"]], "includedLocationIds": [h.service_location]},
        payload,
    )
    assert moved["movedFulfillmentOrders"][0]["assignedLocation"]["location"]["id"] == h.service_location
    body = h.gql(
        f"mutation($ids: [ID!]!) {{ fulfillmentOrdersReroute(fulfillmentOrderIds: $ids) {{ {payload} }} }}",
        {"ids": ["gid://shopify/FulfillmentOrder/0"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"


def test_report_progress_is_offered_only_from_2026_04(h):
    """An open fulfillment order at a merchant location, read at 2025-01 and at 2026-04 (as recorded)."""
    _, fo = at_shop_location(h)
    query = "query($id: ID!) { fulfillmentOrder(id: $id) { supportedActions { action } } }"

    def actions(version: str) -> list[str]:
        response = h.client.post(
            f"/store/{h.shop}/admin/api/{version}/graphql.json",
            json={"query": query, "variables": {"id": fo["id"]}},
            headers={"X-Shopify-Access-Token": h.token},
        )
        return [a["action"] for a in response.get_json()["data"]["fulfillmentOrder"]["supportedActions"]]

    assert actions("2025-01") == ["CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT"]
    assert actions("2026-04") == ["CREATE_FULFILLMENT", "REPORT_PROGRESS", "MOVE", "HOLD", "SPLIT"]


ORDER_CREATE = (
    "order { name tags email displayFinancialStatus totalPriceSet { shopMoney { amount } }"
    " fulfillmentOrders(first: 5) { nodes { status requestStatus assignedLocation { location { id } } } } }"
    f" {PLAIN}"
)


def order_create(h, order: dict) -> dict:
    return h.mutate("orderCreate", "order: OrderCreateOrderInput!", {"order": order}, ORDER_CREATE)


def test_order_create_places_an_order_paid_by_its_transaction_or_with_no_financial_status(h):
    line = {"title": "Mug", "quantity": 2, "priceSet": {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}}}
    sale = {"kind": "SALE", "status": "SUCCESS", "amountSet": {"shopMoney": {"amount": "20", "currencyCode": "USD"}}}
    customer = {"tags": ["b", "a"], "email": "ada@example.com"}
    paid = order_create(h, {"lineItems": [line], **customer, "transactions": [sale]})
    assert paid["userErrors"] == []
    order = paid["order"]
    assert (order["tags"], order["email"], order["displayFinancialStatus"]) == (["a", "b"], "ada@example.com", "PAID")
    assert order["totalPriceSet"] == {"shopMoney": {"amount": "20.0"}}
    [fo] = order["fulfillmentOrders"]["nodes"]
    assert (fo["status"], fo["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    # Without transactions or a financial status the store's recorded orders show none.
    assert order_create(h, {"lineItems": [line]})["order"]["displayFinancialStatus"] is None
    refused = order_create(h, {"lineItems": [{**line, "quantity": 0}]})
    assert refused["order"] is None
    assert refused["userErrors"][0]["field"] == ["order", "lineItems", "0", "quantity"]


RETURNABLE = """query($id: ID!) { returnableFulfillments(orderId: $id, first: 5) { nodes { fulfillment { id }
  returnableFulfillmentLineItems(first: 5) { nodes { quantity fulfillmentLineItem { id lineItem { title } } } } } } }"""
CALCULATE = """query($input: CalculateReturnInput!) { returnCalculate(input: $input) {
  returnLineItems { quantity restockingFee { percentage amountSet { shopMoney { amount } } }
    subtotalSet { shopMoney { amount currencyCode } } totalTaxSet { shopMoney { amount } } }
  returnShippingFee { amountSet { shopMoney { amount } } } } }"""


def test_a_fulfilled_order_can_return_all_it_shipped_and_a_return_is_calculated_at_its_prices(h):
    order, fo = at_shop_location(h, quantity=2)
    h.act(fo["id"], "mark_fulfilled")
    [returnable] = h.gql(RETURNABLE, {"id": order["id"]})["data"]["returnableFulfillments"]["nodes"]
    [line] = returnable["returnableFulfillmentLineItems"]["nodes"]
    assert line["quantity"] == 2
    assert returnable["fulfillment"]["id"] == h.show(order["id"])["fulfillments"][0]["id"]
    returned = {"fulfillmentLineItemId": line["fulfillmentLineItem"]["id"], "quantity": 1}
    calculated = h.gql(
        CALCULATE,
        {"input": {"orderId": order["id"], "returnLineItems": [{**returned, "restockingFee": {"percentage": 10}}]}},
    )["data"]["returnCalculate"]
    assert calculated == {
        "returnLineItems": [
            {
                "quantity": 1,
                "restockingFee": {"percentage": 10.0, "amountSet": {"shopMoney": {"amount": "2.0"}}},
                "subtotalSet": {"shopMoney": {"amount": "-20.0", "currencyCode": "USD"}},
                "totalTaxSet": {"shopMoney": {"amount": "0.0"}},
            }
        ],
        "returnShippingFee": None,
    }
    # An order with nothing shipped has nothing to return.
    unshipped, _ = at_shop_location(h)
    assert h.gql(RETURNABLE, {"id": unshipped["id"]})["data"]["returnableFulfillments"]["nodes"] == []


EDITED = (
    "query($id: ID!) { order(id: $id) { displayFulfillmentStatus totalPriceSet { shopMoney { amount } }"
    " lineItems(first: 10) { nodes { title quantity currentQuantity unfulfilledQuantity } }"
    " fulfillmentOrders(first: 10) { nodes { id status lineItems(first: 10) { nodes { totalQuantity"
    " remainingQuantity lineItem { title fulfillableQuantity } } } } } } }"
)


def edit(h, order: dict, expect: int = 200, **changes) -> dict:
    response = h.client.post(f"/_sandbox/shops/{h.shop}/orders/{order['id'].rsplit('/', 1)[1]}/edit", json=changes)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def test_an_edit_takes_quantity_off_the_open_fulfillment_order_and_gives_added_items_one_of_their_own(h):
    # As the store's recorded edit: 3 -> 1 on the same fulfillment order, an added line in a new one.
    order = h.order([{"title": "Source", "sku": "SKU-1", "quantity": 3, "location_id": h.shop_location, "price": "10"}])
    fo_id = order["fulfillment_orders"][0]["id"]
    line_id = order["line_items"][0]["id"]
    edit(h, order, line_items=[{"id": line_id, "quantity": 1}], add=[{"title": "Board", "quantity": 2, "price": "5"}])
    read = h.gql(EDITED, {"id": order["id"]})["data"]["order"]
    assert read["lineItems"]["nodes"] == [
        {"title": "Source", "quantity": 3, "currentQuantity": 1, "unfulfilledQuantity": 1},
        {"title": "Board", "quantity": 2, "currentQuantity": 2, "unfulfilledQuantity": 2},
    ]
    assert read["totalPriceSet"] == {"shopMoney": {"amount": "20.0"}}
    first, added = read["fulfillmentOrders"]["nodes"]
    assert first["id"] == fo_id and first["status"] == "OPEN"
    assert first["lineItems"]["nodes"] == [
        {"totalQuantity": 1, "remainingQuantity": 1, "lineItem": {"title": "Source", "fulfillableQuantity": 1}}
    ]
    assert added["status"] == "OPEN"
    assert [n["totalQuantity"] for n in added["lineItems"]["nodes"]] == [2]


def test_an_edit_cannot_take_off_what_was_fulfilled_and_editing_a_line_away_closes_its_fulfillment_order(h):
    order = h.order([{"sku": "SKU-1", "quantity": 2, "location_id": h.shop_location}])
    fo = order["fulfillment_orders"][0]
    line_id = order["line_items"][0]["id"]
    fo_line = fo["line_items"][0]["id"]
    h.act(fo["id"], "mark_fulfilled", line_items=[{"id": fo_line, "quantity": 1}])
    refused = edit(h, order, expect=422, line_items=[{"id": line_id, "quantity": 0}])
    assert "already fulfilled" in json.dumps(refused)
    # A refused edit changes nothing, not even the lines checked before the one refused.
    edit(h, order, expect=422, line_items=[{"id": line_id, "quantity": 1}, {"id": line_id, "quantity": -1}])
    assert h.gql(EDITED, {"id": order["id"]})["data"]["order"]["lineItems"]["nodes"][0]["currentQuantity"] == 2
    edit(h, order, line_items=[{"id": line_id, "quantity": 1}])
    read = h.gql(EDITED, {"id": order["id"]})["data"]["order"]
    assert read["displayFulfillmentStatus"] == "FULFILLED"
    assert [n["status"] for n in read["fulfillmentOrders"]["nodes"]] == ["CLOSED"]
