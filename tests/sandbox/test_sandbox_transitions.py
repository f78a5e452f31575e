"""Every row of the transitions table (shopify-fulfillment-api.md §3), through the GraphQL API as the app and as
the merchant, plus the rules around them: supportedActions, userErrors, ids that change."""

from __future__ import annotations

FO = "id status requestStatus lineItems(first: 20) { nodes { id sku totalQuantity remainingQuantity } }"
ERRORS = "userErrors { field message }"

SUBMIT = f"""mutation($id: ID!, $message: String, $items: [FulfillmentOrderLineItemInput!]) {{
  fulfillmentOrderSubmitFulfillmentRequest(id: $id, message: $message, notifyCustomer: true,
                                           fulfillmentOrderLineItems: $items) {{
    originalFulfillmentOrder {{ {FO} }} submittedFulfillmentOrder {{ {FO} }}
    unsubmittedFulfillmentOrder {{ {FO} }} {ERRORS}
  }}
}}"""
ACCEPT = f"""mutation($id: ID!, $message: String) {{
  fulfillmentOrderAcceptFulfillmentRequest(id: $id, message: $message) {{ fulfillmentOrder {{ {FO} }} {ERRORS} }}
}}"""
REJECT = f"""mutation($id: ID!, $message: String, $lines: [IncomingRequestLineItemInput!]) {{
  fulfillmentOrderRejectFulfillmentRequest(id: $id, reason: INVENTORY_OUT_OF_STOCK, message: $message,
                                           lineItems: $lines) {{ fulfillmentOrder {{ {FO} }} {ERRORS} }}
}}"""
REQUEST_CANCEL = f"""mutation($id: ID!, $message: String) {{
  fulfillmentOrderSubmitCancellationRequest(id: $id, message: $message) {{ fulfillmentOrder {{ {FO} }} {ERRORS} }}
}}"""
ACCEPT_CANCEL = f"""mutation($id: ID!) {{
  fulfillmentOrderAcceptCancellationRequest(id: $id, message: "nothing picked yet") {{
    fulfillmentOrder {{ {FO} }} {ERRORS}
  }}
}}"""
REJECT_CANCEL = f"""mutation($id: ID!) {{
  fulfillmentOrderRejectCancellationRequest(id: $id, message: "already shipped") {{
    fulfillmentOrder {{ {FO} }} {ERRORS}
  }}
}}"""
CLOSE = f"""mutation($id: ID!) {{
  fulfillmentOrderClose(id: $id, message: "out of stock for good") {{ fulfillmentOrder {{ {FO} }} {ERRORS} }}
}}"""
CANCEL = f"""mutation($id: ID!) {{
  fulfillmentOrderCancel(id: $id) {{
    fulfillmentOrder {{ {FO} }} replacementFulfillmentOrder {{ {FO} }} userErrors {{ field message code }}
  }}
}}"""
MOVE = f"""mutation($id: ID!, $to: ID!, $items: [FulfillmentOrderLineItemInput!]) {{
  fulfillmentOrderMove(id: $id, newLocationId: $to, fulfillmentOrderLineItems: $items) {{
    movedFulfillmentOrder {{ {FO} assignedLocation {{ location {{ id }} }} }}
    originalFulfillmentOrder {{ {FO} }} userErrors {{ field message code }}
  }}
}}"""
HOLD = f"""mutation($id: ID!) {{
  fulfillmentOrderHold(id: $id, fulfillmentHold: {{reason: AWAITING_PAYMENT, reasonNotes: "check payment"}}) {{
    fulfillmentHold {{ id reason reasonNotes }} fulfillmentOrder {{ {FO} fulfillmentHolds {{ reason }} }}
    userErrors {{ field message code }}
  }}
}}"""
RELEASE = f"""mutation($id: ID!) {{
  fulfillmentOrderReleaseHold(id: $id) {{ fulfillmentOrder {{ {FO} fulfillmentHolds {{ id }} }} {ERRORS} }}
}}"""
CREATE = """mutation($groups: [FulfillmentOrderLineItemsInput!]!) {
  fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder: $groups,
                                  trackingInfo: {company: "UPS", number: "1Z999", url: "https://ups.example/1Z999"}}) {
    fulfillment { id name status displayStatus totalQuantity trackingInfo { company number url }
                  fulfillmentLineItems(first: 10) { nodes { quantity lineItem { sku } } } }
    userErrors { field message }
  }
}"""
PROGRESS = f"""mutation($id: ID!) {{
  fulfillmentOrderReportProgress(id: $id, progressReport: {{reasonNotes: "picking"}}) {{
    fulfillmentOrder {{ {FO} }} userErrors {{ field message code }}
  }}
}}"""
ASSIGNED = """query($status: FulfillmentOrderAssignmentStatus, $after: String) {
  assignedFulfillmentOrders(first: 2, after: $after, assignmentStatus: $status) {
    edges { cursor node { id status requestStatus } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""


def run(h, document: str, variables: dict, token: str | None = None) -> dict:
    body = h.gql(document, variables, token)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def first_fo(h, order: dict) -> str:
    return order["fulfillment_orders"][0]["id"]


def submitted(h, message: str = "please gift wrap") -> str:
    fo = first_fo(h, h.order())
    result = run(h, SUBMIT, {"id": fo, "message": message}, h.merchant_token)
    assert result["userErrors"] == []
    return fo


def accepted(h) -> str:
    fo = submitted(h)
    assert run(h, ACCEPT, {"id": fo, "message": "on it"})["userErrors"] == []
    return fo


def actions(h, fo: str) -> list[str]:
    return [a["action"] for a in h.fo(fo)["supportedActions"]]


def kinds(h, order_id: str) -> list[str]:
    return [t["kind"] for t in h.show(order_id)["timeline"]]


# --- submit -------------------------------------------------------------------------------------------


def test_submit_whole_fulfillment_order_keeps_its_id_and_records_the_note(h):
    order = h.order()
    fo = first_fo(h, order)
    assert actions(h, fo) == ["REQUEST_FULFILLMENT", "CREATE_FULFILLMENT", "HOLD", "MOVE", "SPLIT"]
    result = run(h, SUBMIT, {"id": fo, "message": "fragile"}, h.merchant_token)
    assert result["userErrors"] == []
    assert result["submittedFulfillmentOrder"]["id"] == result["originalFulfillmentOrder"]["id"] == fo
    assert result["unsubmittedFulfillmentOrder"] is None
    read = h.fo(fo)
    assert (read["status"], read["requestStatus"]) == ("OPEN", "SUBMITTED")
    assert [a["action"] for a in read["supportedActions"]] == ["CANCEL_FULFILLMENT_ORDER"]
    request = read["merchantRequests"]["nodes"][0]
    assert request["kind"] == "FULFILLMENT_REQUEST" and request["message"] == "fragile"
    assert request["requestOptions"] == {"notify_customer": True} and request["sentAt"].endswith("Z")
    shown = h.show(order["id"])
    assert shown["display_fulfillment_status"] == "IN_PROGRESS"
    assert "fragile" in shown["timeline"][-1]["message"]


def test_submit_some_items_splits_off_an_unsubmitted_fulfillment_order(h):
    order = h.order()
    fo = order["fulfillment_orders"][0]
    line = fo["line_items"][0]  # SKU-1 x2
    result = run(h, SUBMIT, {"id": fo["id"], "items": [{"id": line["id"], "quantity": 1}]}, h.merchant_token)
    submitted_fo, rest = result["submittedFulfillmentOrder"], result["unsubmittedFulfillmentOrder"]
    assert submitted_fo["id"] == fo["id"] and submitted_fo["requestStatus"] == "SUBMITTED"
    assert [(n["sku"], n["totalQuantity"]) for n in submitted_fo["lineItems"]["nodes"]] == [("SKU-1", 1)]
    assert rest["id"] != fo["id"] and (rest["status"], rest["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    assert sorted((n["sku"], n["remainingQuantity"]) for n in rest["lineItems"]["nodes"]) == [
        ("SKU-1", 1),
        ("SKU-2", 1),
    ]


def test_submit_quantity_beyond_remaining_is_a_user_error(h):
    fo = h.order()["fulfillment_orders"][0]
    line = fo["line_items"][0]
    result = run(h, SUBMIT, {"id": fo["id"], "items": [{"id": line["id"], "quantity": 5}]}, h.merchant_token)
    assert result["userErrors"][0]["message"] == "Invalid fulfillment order line item quantity requested."
    assert h.fo(fo["id"])["requestStatus"] == "UNSUBMITTED"


def test_submit_at_a_merchant_managed_location_is_refused(h):
    fo = first_fo(h, h.order([{"sku": "A", "quantity": 1, "location_id": h.shop_location}]))
    result = run(h, SUBMIT, {"id": fo}, h.merchant_token)
    assert "fulfillment service location" in result["userErrors"][0]["message"]


# --- the service answers ------------------------------------------------------------------------------


def test_accept_moves_to_in_progress_accepted_and_reaches_the_timeline(h):
    fo = submitted(h)
    result = run(h, ACCEPT, {"id": fo, "message": "ships tomorrow"})
    assert (result["fulfillmentOrder"]["status"], result["fulfillmentOrder"]["requestStatus"]) == (
        "IN_PROGRESS",
        "ACCEPTED",
    )
    assert actions(h, fo) == ["CREATE_FULFILLMENT", "REQUEST_CANCELLATION"]
    order_id = h.gql("query($id: ID!) { fulfillmentOrder(id: $id) { orderId } }", {"id": fo})["data"][
        "fulfillmentOrder"
    ]["orderId"]
    assert "ships tomorrow" in h.show(order_id)["timeline"][-1]["message"]


def test_accept_twice_is_a_user_error(h):
    fo = accepted(h)
    result = run(h, ACCEPT, {"id": fo})
    assert "request status ACCEPTED" in result["userErrors"][0]["message"]


def test_reject_returns_the_order_to_the_merchant_with_the_reason(h):
    order = h.order()
    fo = order["fulfillment_orders"][0]
    run(h, SUBMIT, {"id": fo["id"]}, h.merchant_token)
    line = fo["line_items"][1]
    result = run(
        h,
        REJECT,
        {
            "id": fo["id"],
            "message": "no stock",
            "lines": [{"fulfillmentOrderLineItemId": line["id"], "message": "SKU-2 sold out"}],
        },
    )
    assert (result["fulfillmentOrder"]["status"], result["fulfillmentOrder"]["requestStatus"]) == ("OPEN", "REJECTED")
    shown = h.show(order["id"])
    assert shown["display_fulfillment_status"] == "REQUEST_DECLINED"
    entry = shown["timeline"][-1]
    assert entry["kind"] == "fulfillment_request_rejected"
    assert "INVENTORY_OUT_OF_STOCK" in entry["message"] and "SKU-2 sold out" in entry["message"]
    # The merchant may ask again.
    assert "REQUEST_FULFILLMENT" in actions(h, fo["id"])


def test_only_the_owning_app_may_answer_a_request(h):
    fo = submitted(h)
    as_merchant = run(h, ACCEPT, {"id": fo}, h.merchant_token)
    assert "does not own" in as_merchant["userErrors"][0]["message"]
    at_shop = first_fo(h, h.order([{"sku": "A", "quantity": 1, "location_id": h.shop_location}]))
    result = run(h, ACCEPT, {"id": at_shop})
    assert "api type" in result["userErrors"][0]["message"]


# --- cancellation -------------------------------------------------------------------------------------


def test_cancellation_request_then_accept_closes_with_zero_quantities_and_a_replacement(h):
    fo = accepted(h)
    asked = run(h, REQUEST_CANCEL, {"id": fo, "message": "customer changed mind"}, h.merchant_token)
    # The store's payload shows the request status from before the change; a read shows the new one.
    assert asked["fulfillmentOrder"]["requestStatus"] == "ACCEPTED"
    assert asked["fulfillmentOrder"]["status"] == "IN_PROGRESS"
    assert h.fo(fo)["requestStatus"] == "CANCELLATION_REQUESTED"
    notes = h.fo(fo)["merchantRequests"]["nodes"]
    assert [n["kind"] for n in notes] == ["FULFILLMENT_REQUEST", "CANCELLATION_REQUEST"]
    assert notes[1]["message"] == "customer changed mind"
    done = run(h, ACCEPT_CANCEL, {"id": fo})["fulfillmentOrder"]
    assert (done["status"], done["requestStatus"]) == ("CLOSED", "CANCELLATION_ACCEPTED")
    assert [(n["sku"], n["totalQuantity"], n["remainingQuantity"]) for n in done["lineItems"]["nodes"]] == [
        ("SKU-1", 0, 0),
        ("SKU-2", 0, 0),
    ]
    order = h.show(
        h.gql("query($id: ID!) { fulfillmentOrder(id: $id) { orderId } }", {"id": fo})["data"]["fulfillmentOrder"][
            "orderId"
        ]
    )
    replacement = [f for f in order["fulfillment_orders"] if f["id"] != fo][0]
    assert (replacement["status"], replacement["request_status"]) == ("OPEN", "UNSUBMITTED")
    assert sum(li["remaining_quantity"] for li in replacement["line_items"]) == 3
    assert order["display_fulfillment_status"] == "UNFULFILLED"


def test_rejected_cancellation_keeps_the_service_working(h):
    fo = accepted(h)
    run(h, REQUEST_CANCEL, {"id": fo}, h.merchant_token)
    result = run(h, REJECT_CANCEL, {"id": fo})["fulfillmentOrder"]
    assert (result["status"], result["requestStatus"]) == ("IN_PROGRESS", "CANCELLATION_REJECTED")
    created = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo}]})
    assert created["userErrors"] == [] and created["fulfillment"]["totalQuantity"] == 3


def test_cancellation_request_before_acceptance_is_refused(h):
    fo = submitted(h)
    result = run(h, REQUEST_CANCEL, {"id": fo}, h.merchant_token)
    assert "cancel the fulfillment order instead" in result["userErrors"][0]["message"]


def test_withdraw_a_submitted_request_closes_it_and_creates_a_replacement(h):
    fo = submitted(h)
    result = run(h, CANCEL, {"id": fo}, h.merchant_token)
    assert result["fulfillmentOrder"]["status"] == "CLOSED"
    replacement = result["replacementFulfillmentOrder"]
    assert replacement["id"] != fo
    assert (replacement["status"], replacement["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    requested = run(h, ASSIGNED, {"status": "FULFILLMENT_REQUESTED"})
    assert requested["edges"] == []


def test_reset_after_cancellation_request_closes_it_without_the_service(h):
    fo = accepted(h)
    run(h, REQUEST_CANCEL, {"id": fo}, h.merchant_token)
    result = run(h, CANCEL, {"id": fo}, h.merchant_token)
    assert result["fulfillmentOrder"]["status"] == "CLOSED"
    assert result["replacementFulfillmentOrder"]["requestStatus"] == "UNSUBMITTED"


def test_cancel_is_refused_once_accepted(h):
    fo = accepted(h)
    result = run(h, CANCEL, {"id": fo}, h.merchant_token)
    assert result["userErrors"][0]["message"] == (
        "Fulfillment order is not in cancelable request state and can't be canceled."
    )


# --- close --------------------------------------------------------------------------------------------


def test_close_makes_it_incomplete_and_the_merchant_can_request_again(h):
    fo = accepted(h)
    result = run(h, CLOSE, {"id": fo})["fulfillmentOrder"]
    assert (result["status"], result["requestStatus"]) == ("INCOMPLETE", "CLOSED")
    again = run(h, SUBMIT, {"id": fo}, h.merchant_token)
    assert again["userErrors"] == []
    assert again["submittedFulfillmentOrder"]["id"] != fo
    assert again["submittedFulfillmentOrder"]["requestStatus"] == "SUBMITTED"
    assert h.fo(fo)["status"] == "CLOSED"


def test_close_before_acceptance_is_refused(h):
    fo = submitted(h)
    assert "must have been accepted" in run(h, CLOSE, {"id": fo})["userErrors"][0]["message"]


# --- move ---------------------------------------------------------------------------------------------


def test_move_is_refused_while_the_service_holds_the_request(h):
    fo = submitted(h)
    assert (
        "submitted fulfillment order that is at a 3PL"
        in run(h, MOVE, {"id": fo, "to": h.shop_location}, h.merchant_token)["userErrors"][0]["message"]
    )
    run(h, ACCEPT, {"id": fo})
    assert run(h, MOVE, {"id": fo, "to": h.shop_location}, h.merchant_token)["userErrors"]
    run(h, REQUEST_CANCEL, {"id": fo}, h.merchant_token)
    assert run(h, MOVE, {"id": fo, "to": h.shop_location}, h.merchant_token)["userErrors"]
    run(h, REJECT_CANCEL, {"id": fo})
    assert run(h, MOVE, {"id": fo, "to": h.shop_location}, h.merchant_token)["userErrors"]


def test_move_whole_keeps_the_id_and_some_items_make_a_new_fulfillment_order(h):
    fo = h.order()["fulfillment_orders"][0]
    line = fo["line_items"][0]
    some = run(
        h, MOVE, {"id": fo["id"], "to": h.shop_location, "items": [{"id": line["id"], "quantity": 1}]}, h.merchant_token
    )
    moved = some["movedFulfillmentOrder"]
    assert moved["id"] != fo["id"] and moved["assignedLocation"]["location"]["id"] == h.shop_location
    assert sum(n["totalQuantity"] for n in some["originalFulfillmentOrder"]["lineItems"]["nodes"]) == 2
    whole = run(h, MOVE, {"id": fo["id"], "to": h.shop_location}, h.merchant_token)
    assert whole["movedFulfillmentOrder"]["id"] == fo["id"]
    assert whole["movedFulfillmentOrder"]["assignedLocation"]["location"]["id"] == h.shop_location


def test_move_after_reported_progress_is_refused_until_opened(h):
    fo = first_fo(h, h.order([{"sku": "A", "quantity": 1, "location_id": h.shop_location}]))
    assert run(h, PROGRESS, {"id": fo}, h.merchant_token)["fulfillmentOrder"]["status"] == "IN_PROGRESS"
    refused = run(h, MOVE, {"id": fo, "to": h.service_location}, h.merchant_token)
    assert refused["userErrors"][0]["code"] == "CANNOT_MOVE_FULFILLMENT_ORDER_WITH_REPORTED_PROGRESS"
    h.act(fo, "open")
    assert run(h, MOVE, {"id": fo, "to": h.service_location}, h.merchant_token)["userErrors"] == []


# --- hold ---------------------------------------------------------------------------------------------


def test_hold_and_release(h):
    fo = first_fo(h, h.order())
    held = run(h, HOLD, {"id": fo}, h.merchant_token)
    assert held["fulfillmentOrder"]["status"] == "ON_HOLD"
    assert held["fulfillmentHold"]["reason"] == "AWAITING_PAYMENT"
    assert actions(h, fo) == ["RELEASE_HOLD", "HOLD", "MOVE"]
    assert "ON_HOLD" in run(h, SUBMIT, {"id": fo}, h.merchant_token)["userErrors"][0]["message"]
    released = run(h, RELEASE, {"id": fo}, h.merchant_token)["fulfillmentOrder"]
    assert released["status"] == "OPEN" and released["fulfillmentHolds"] == []


def test_hold_is_refused_while_submitted(h):
    fo = submitted(h)
    assert run(h, HOLD, {"id": fo}, h.merchant_token)["userErrors"]


# --- fulfillments -------------------------------------------------------------------------------------


def test_fulfilling_everything_closes_the_fulfillment_order(h):
    fo = accepted(h)
    result = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo}]})
    fulfillment = result["fulfillment"]
    assert fulfillment["name"] == "#1001-F1" and fulfillment["status"] == "SUCCESS"  # the GraphQL name, as recorded
    assert fulfillment["trackingInfo"] == [{"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}]
    assert h.fo(fo)["status"] == "CLOSED"
    orders = h.client.get(f"/_sandbox/shops/{h.shop}/orders").get_json()["orders"]
    assert orders[0]["display_fulfillment_status"] == "FULFILLED"
    assert orders[0]["fulfillments"][0]["tracking_info"][0]["number"] == "1Z999"


def test_fulfilling_some_items_keeps_it_in_progress(h):
    fo = accepted(h)
    line = h.fo(fo)["lineItems"]["nodes"][0]
    result = run(
        h,
        CREATE,
        {"groups": [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 1}]}]},
    )
    assert result["fulfillment"]["totalQuantity"] == 1
    read = h.fo(fo)
    assert read["status"] == "IN_PROGRESS"
    assert read["lineItems"]["nodes"][0]["remainingQuantity"] == 1
    too_many = run(
        h,
        CREATE,
        {"groups": [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 2}]}]},
    )
    assert too_many["userErrors"][0]["message"] == "Invalid fulfillment order line item quantity requested."
    second = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo}]})
    assert second["fulfillment"]["name"] == "#1001-F2" and second["fulfillment"]["totalQuantity"] == 2
    assert h.fo(fo)["status"] == "CLOSED"


def test_fulfillment_needs_an_accepted_request(h):
    fo = submitted(h)
    result = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo}]})
    assert "must be accepted" in result["userErrors"][0]["message"]


def test_one_fulfillment_cannot_span_locations(h):
    order = h.order([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1, "location_id": h.shop_location}])
    a, b = (f["id"] for f in order["fulfillment_orders"])
    # The store checks the location before each group's state, and lists the locations by id (as recorded).
    expected = {
        "field": ["fulfillment"],
        "message": "All fulfillment orders must be assigned to a single location. Multiple locations with ids"
        f" [{h.shop_location.rsplit('/', 1)[1]}, {h.service_location.rsplit('/', 1)[1]}] were found.",
    }
    for groups in ([a, b], [b, a]):
        result = run(h, CREATE, {"groups": [{"fulfillmentOrderId": i} for i in groups]}, h.merchant_token)
        assert result["userErrors"] == [expected]


def test_merchant_mark_as_fulfilled_is_refused_while_in_progress_and_allowed_after_withdrawal(h):
    fo = accepted(h)
    refused = h.act(fo, "mark_fulfilled", expect=422, tracking_number="T1")
    assert "cancel it before marking" in refused["user_errors"][0]["message"]
    fo2 = submitted(h)
    replacement = run(h, CANCEL, {"id": fo2}, h.merchant_token)["replacementFulfillmentOrder"]["id"]
    done = h.act(replacement, "mark_fulfilled", tracking_number="T2", company="DHL")
    assert done["fulfillment"]["display_status"] == "FULFILLED"
    assert done["fulfillment_orders"][0]["status"] == "CLOSED"
    plain = h.act(first_fo(h, h.order()), "mark_fulfilled")
    assert plain["fulfillment"]["display_status"] == "MARKED_AS_FULFILLED"


def test_events_tracking_and_cancel_of_a_fulfillment(h):
    fo = accepted(h)
    fulfillment = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo}]})["fulfillment"]["id"]
    event = """mutation($id: ID!, $status: FulfillmentEventStatus!) {
      fulfillmentEventCreate(fulfillmentEvent: {fulfillmentId: $id, status: $status, message: "scan", city: "Oslo"}) {
        fulfillmentEvent { id status message happenedAt } userErrors { field message } } }"""
    read = """query($id: ID!) { fulfillment(id: $id) { status displayStatus inTransitAt deliveredAt
      events(first: 10) { nodes { status } } trackingInfo { number } } }"""
    assert run(h, event, {"id": fulfillment, "status": "IN_TRANSIT"})["fulfillmentEvent"]["status"] == "IN_TRANSIT"
    after = run(h, read, {"id": fulfillment})
    assert after["displayStatus"] == "IN_TRANSIT" and after["inTransitAt"] and after["deliveredAt"] is None
    run(h, event, {"id": fulfillment, "status": "DELIVERED"})
    after = run(h, read, {"id": fulfillment})
    assert after["displayStatus"] == "DELIVERED" and after["deliveredAt"]
    assert [n["status"] for n in after["events"]["nodes"]] == ["IN_TRANSIT", "DELIVERED"]
    update = """mutation($id: ID!) { fulfillmentTrackingInfoUpdate(fulfillmentId: $id,
      trackingInfoInput: {company: "PostNord", number: "PN1"}) { fulfillment { trackingInfo { company number } }
      userErrors { message } } }"""
    assert run(h, update, {"id": fulfillment})["fulfillment"]["trackingInfo"] == [
        {"company": "PostNord", "number": "PN1"}
    ]
    cancel = """mutation($id: ID!) { fulfillmentCancel(id: $id) { fulfillment { status displayStatus }
      userErrors { message } } }"""
    assert run(h, cancel, {"id": fulfillment})["fulfillment"] == {"status": "CANCELLED", "displayStatus": "CANCELED"}
    timeline = h.client.get(f"/_sandbox/shops/{h.shop}/orders").get_json()["orders"][0]
    assert timeline["display_fulfillment_status"] != "FULFILLED"
    assert {"fulfillment_event", "tracking_updated", "fulfillment_cancelled"} <= {
        t["kind"] for t in timeline["timeline"]
    }


# --- split, merge, unknown ids, queries ---------------------------------------------------------------


def test_split_and_merge(h):
    fo = h.order()["fulfillment_orders"][0]
    split = """mutation($splits: [FulfillmentOrderSplitInput!]!) {
      fulfillmentOrderSplit(fulfillmentOrderSplits: $splits) {
      fulfillmentOrderSplits { fulfillmentOrder { id } remainingFulfillmentOrder { id lineItems(first: 5) {
      nodes { sku totalQuantity } } } } userErrors { field message } } }"""
    line = fo["line_items"][1]
    result = run(
        h,
        split,
        {
            "splits": [
                {"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 1}]}
            ]
        },
        h.merchant_token,
    )
    new = result["fulfillmentOrderSplits"][0]["remainingFulfillmentOrder"]
    assert new["lineItems"]["nodes"] == [{"sku": "SKU-2", "totalQuantity": 1}]
    # As recorded, MERGE is offered where the fulfillment order is read with its order, not by its id alone.
    assert "MERGE" not in actions(h, fo["id"])
    by_order = h.gql(
        "query($id: ID!) { fulfillmentOrder(id: $id) { order { fulfillmentOrders(first: 5) {"
        " nodes { id supportedActions { action } } } } } }",
        {"id": fo["id"]},
    )["data"]["fulfillmentOrder"]["order"]["fulfillmentOrders"]["nodes"]
    assert "MERGE" in [a["action"] for n in by_order if n["id"] == fo["id"] for a in n["supportedActions"]]
    merge = """mutation($m: [FulfillmentOrderMergeInput!]!) { fulfillmentOrderMerge(fulfillmentOrderMergeInputs: $m) {
      fulfillmentOrderMerges { fulfillmentOrder { id lineItems(first: 5) { nodes { sku totalQuantity } } } }
      userErrors { field message } } }"""
    merged = run(
        h,
        merge,
        {"m": [{"mergeIntents": [{"fulfillmentOrderId": fo["id"]}, {"fulfillmentOrderId": new["id"]}]}]},
        h.merchant_token,
    )
    lines = merged["fulfillmentOrderMerges"][0]["fulfillmentOrder"]["lineItems"]["nodes"]
    assert sorted((n["sku"], n["totalQuantity"]) for n in lines) == [("SKU-1", 2), ("SKU-2", 1)]
    # As recorded: the first fulfillment order keeps its id and takes the rest; the other closes.
    assert merged["fulfillmentOrderMerges"][0]["fulfillmentOrder"]["id"] == fo["id"]
    assert h.fo(fo["id"])["status"] == "OPEN" and h.fo(new["id"])["status"] == "CLOSED"


def test_unknown_ids(h):
    body = h.gql(ACCEPT, {"id": "gid://shopify/FulfillmentOrder/999999"})
    assert body["data"]["fulfillmentOrderAcceptFulfillmentRequest"] is None
    assert body["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"
    assert h.gql('{ fulfillmentOrder(id: "gid://shopify/FulfillmentOrder/999999") { id } }')["data"] == {
        "fulfillmentOrder": None
    }


def test_assigned_fulfillment_orders_paginate_by_id_and_filter(h):
    ids = [first_fo(h, h.order()) for _ in range(5)]
    run(h, SUBMIT, {"id": ids[1]}, h.merchant_token)
    run(h, SUBMIT, {"id": ids[3]}, h.merchant_token)
    run(h, ACCEPT, {"id": ids[3]})
    seen, after = [], None
    while True:
        page = run(h, ASSIGNED, {"after": after})
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    assert seen == ids
    assert [e["node"]["id"] for e in run(h, ASSIGNED, {"status": "FULFILLMENT_REQUESTED"})["edges"]] == [ids[1]]
    assert [e["node"]["id"] for e in run(h, ASSIGNED, {"status": "FULFILLMENT_ACCEPTED"})["edges"]] == [ids[3]]
    run(h, CREATE, {"groups": [{"fulfillmentOrderId": ids[3]}]})
    everything = (
        run(h, ASSIGNED, {})["edges"]
        + run(h, ASSIGNED, {"after": run(h, ASSIGNED, {})["pageInfo"]["endCursor"]})["edges"]
    )
    assert ids[3] not in [e["node"]["id"] for e in everything]  # CLOSED ones are left out
    assert run(h, ASSIGNED, {}, h.merchant_token)["edges"] == []  # the merchant has no service


def test_fulfillment_service_names_are_unique_and_updatable(h):
    again = """mutation { fulfillmentServiceCreate(name: "acme 3pl") { fulfillmentService { id }
      userErrors { field message } } }"""
    assert run(h, again, {})["userErrors"] == [{"field": ["name"], "message": "Name has already been taken"}]
    service_id = h.state()["fulfillment_services"][0]["id"]
    update = """mutation($id: ID!) { fulfillmentServiceUpdate(id: $id, callbackUrl: "https://app.mock.shop/cb") {
      fulfillmentService { callbackUrl serviceName handle type } userErrors { message } } }"""
    result = run(h, update, {"id": service_id})["fulfillmentService"]
    assert result == {
        "callbackUrl": "https://app.mock.shop/cb",
        "serviceName": "Acme 3PL",
        "handle": "acme-3pl",
        "type": "THIRD_PARTY",
    }
    assert h.state()["fulfillment_services"][0]["callback_url"] == "https://app.mock.shop/cb"


def test_an_empty_line_item_list_means_everything_remaining(h):
    fo = accepted(h)
    result = run(h, CREATE, {"groups": [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": []}]})
    assert result["fulfillment"]["totalQuantity"] == 3 and h.fo(fo)["status"] == "CLOSED"
