"""Shops and orders around the transitions: the legacy workflow, automatic fulfilment, edit/refund refusal,
GraphQL faults, authentication, and the REST contract the demo and end-to-end tests rely on."""

from __future__ import annotations

import json

ACCEPT = "mutation($id: ID!) { fulfillmentOrderAcceptFulfillmentRequest(id: $id) { userErrors { message } } }"
REJECT = "mutation($id: ID!) { fulfillmentOrderRejectFulfillmentRequest(id: $id) { userErrors { message } } }"
PROGRESS = """mutation($id: ID!) { fulfillmentOrderReportProgress(id: $id, progressReport: {reasonNotes: "packed"}) {
  fulfillmentOrder { status requestStatus } userErrors { message } } }"""
CREATE = """mutation($id: ID!) {
  fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder: [{fulfillmentOrderId: $id}]}) {
    fulfillment { status } userErrors { message } } }"""


def payload(body: dict) -> dict:
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


# --- legacy workflow (rows L1-L3) -------------------------------------------------------------------------


def test_legacy_request_is_in_progress_at_once_and_the_service_is_still_pinged(make, receiver):
    h = make(workflow="legacy", callback_url=receiver.url)
    order = h.order()
    fo = order["fulfillment_orders"][0]["id"]
    result = h.act(fo, "submit_fulfillment_request", message="ship fast")
    assert (result["fulfillment_orders"][0]["status"], result["fulfillment_orders"][0]["request_status"]) == (
        "IN_PROGRESS",
        "ACCEPTED",
    )
    assert result["order"]["display_fulfillment_status"] == "IN_PROGRESS"
    assert h.sandbox.notifier.wait_idle(10)
    assert json.loads(receiver.requests[0].body) == {"kind": "FULFILLMENT_REQUEST"}
    # No accept/reject step.
    assert "legacy" in payload(h.gql(REJECT, {"id": fo}))["userErrors"][0]["message"]
    assert payload(h.gql(ACCEPT, {"id": fo}))["userErrors"]
    # L3: no cancellation from the admin once requested.
    refused = h.act(fo, "submit_cancellation_request", expect=422, message="stop")
    assert "Contact the fulfillment service" in refused["user_errors"][0]["message"]
    assert "Contact the fulfillment service" in h.act(fo, "cancel", expect=422)["user_errors"][0]["message"]
    shown = h.client.get(f"/_sandbox/shops/{h.shop}/fulfillment_orders/{fo}").get_json()
    assert shown["supported_actions"] == ["CREATE_FULFILLMENT"]
    # L2: progress, then completion.
    progressed = payload(h.gql(PROGRESS, {"id": fo}))
    assert progressed["userErrors"] == [] and progressed["fulfillmentOrder"]["status"] == "IN_PROGRESS"
    assert payload(h.gql(CREATE, {"id": fo}))["fulfillment"]["status"] == "SUCCESS"
    shown = h.show(order["id"])
    assert shown["display_fulfillment_status"] == "FULFILLED"
    assert [t["kind"] for t in shown["timeline"]] == [
        "order_placed",
        "fulfillment_request_submitted",
        "fulfillment_request_accepted",
        "progress_reported",
        "fulfillment_created",
    ]


def test_legacy_order_can_still_be_cancelled_before_the_request(make):
    h = make(workflow="legacy")
    fo = h.order()["fulfillment_orders"][0]["id"]
    assert h.act(fo, "move", location_id=h.shop_location)["fulfillment_orders"][0]["assigned_location_id"] == (
        h.shop_location
    )


def test_auto_fulfill_requests_paid_orders_at_service_locations(make):
    h = make(auto_fulfill=True)
    order = h.order([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1, "location_id": h.shop_location}])
    by_location = {f["assigned_location_id"]: f for f in order["fulfillment_orders"]}
    assert by_location[h.service_location]["request_status"] == "SUBMITTED"
    assert by_location[h.shop_location]["request_status"] == "UNSUBMITTED"
    assert "automatically" in order["timeline"][-1]["message"]
    unpaid = h.order(paid=False)
    assert unpaid["fulfillment_orders"][0]["request_status"] == "UNSUBMITTED"
    paid = h.client.post(f"/_sandbox/shops/{h.shop}/orders/{unpaid['id'].rsplit('/', 1)[-1]}/pay").get_json()
    assert paid["fulfillment_orders"][0]["request_status"] == "SUBMITTED"


# --- editing and refunding (N4) ---------------------------------------------------------------------------


def test_edit_and_refund_are_refused_while_the_service_holds_a_request(h):
    order = h.order()
    number = order["id"].rsplit("/", 1)[-1]
    fo = order["fulfillment_orders"][0]["id"]
    assert h.client.post(f"/_sandbox/shops/{h.shop}/orders/{number}/edit", json={"note": "gift"}).status_code == 200
    h.act(fo, "submit_fulfillment_request")
    for action in ("edit", "refund"):
        refused = h.client.post(f"/_sandbox/shops/{h.shop}/orders/{number}/{action}", json={})
        assert refused.status_code == 422
        assert "Acme 3PL has a fulfillment request" in refused.get_json()["user_errors"][0]["message"]
    h.act(fo, "cancel")
    assert (
        h.client.post(f"/_sandbox/shops/{h.shop}/orders/{order['id']}/refund", json={"amount": 10}).status_code == 200
    )
    kinds = [t["kind"] for t in h.show(order["id"])["timeline"]]
    assert kinds.count("order_edited") == 1 and kinds.count("order_refunded") == 1


# --- GraphQL faults and authentication -------------------------------------------------------------------


def test_error_and_lost_response_faults(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"error_rate": 1.0, "seed": 7})
    response = h.client.post(
        f"/store/{h.shop}/admin/api/2026-07/graphql.json",
        json={"query": ACCEPT, "variables": {"id": fo}},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert response.status_code in (500, 502, 503)
    assert h.client.get(f"/_sandbox/shops/{h.shop}/fulfillment_orders/{fo}").get_json()["request_status"] == "SUBMITTED"
    h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"error_rate": 0, "lost_response_rate": 1.0})
    response = h.client.post(
        f"/store/{h.shop}/admin/api/2026-07/graphql.json",
        json={"query": ACCEPT, "variables": {"id": fo}},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert response.status_code == 502
    # The change was applied although the answer was lost.
    assert h.client.get(f"/_sandbox/shops/{h.shop}/fulfillment_orders/{fo}").get_json()["request_status"] == "ACCEPTED"
    # The merchant's own calls are never faulted.
    assert "errors" not in h.gql("{ shop { id } }", token=h.merchant_token)


def test_timeout_fault_sleeps_and_applies_nothing(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"timeout_rate": 1.0, "timeout_s": 0.05})
    response = h.client.post(
        "/admin/api/2026-07/graphql.json",
        json={"query": ACCEPT, "variables": {"id": fo}},
        headers={"X-Shopify-Access-Token": h.token},
    )
    assert response.status_code == 504
    assert h.client.get(f"/_sandbox/shops/{h.shop}/fulfillment_orders/{fo}").get_json()["request_status"] == "SUBMITTED"


def test_seeded_faults_replay_the_same_sequence(h):
    def run() -> list[int]:
        h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"error_rate": 0.5, "seed": 42})
        return [
            h.client.post(
                "/admin/api/2026-07/graphql.json",
                json={"query": "{ shop { id } }"},
                headers={"X-Shopify-Access-Token": h.token},
            ).status_code
            for _ in range(12)
        ]

    first = run()
    assert first == run() and 200 in first and set(first) - {200}


def test_unknown_token_and_wrong_shop_are_401(h):
    for headers, path in (
        ({}, "/admin/api/2026-07/graphql.json"),
        ({"X-Shopify-Access-Token": "nope"}, "/admin/api/2026-07/graphql.json"),
        ({"X-Shopify-Access-Token": h.token}, "/store/other.myshopify.com/admin/api/2026-07/graphql.json"),
    ):
        response = h.client.post(path, json={"query": "{ shop { id } }"}, headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        }


def test_validation_errors_are_http_200(h):
    body = h.gql("{ shop { id doesNotExist } }")
    assert "doesNotExist" in body["errors"][0]["message"] and "data" not in body


# --- the REST contract ------------------------------------------------------------------------------------


def test_shop_creation_is_idempotent_and_state_is_reported(h):
    again = h.client.post("/_sandbox/shops", json={"domain": h.shop})
    assert again.status_code == 200 and again.get_json()["merchant_token"] == h.merchant_token
    assert h.client.post("/_sandbox/shops", json={"domain": "not a domain"}).status_code == 422
    state = h.state()
    assert {
        "domain",
        "merchant_token",
        "plan",
        "workflow",
        "locations",
        "fulfillment_services",
        "webhook_subscriptions",
        "throttle",
        "cost",
        "callbacks_sent",
        "webhooks_sent",
        "faults",
    } <= set(state)
    assert [loc["name"] for loc in state["locations"]] == ["Shop location", "Acme 3PL"]
    service = state["fulfillment_services"][0]
    assert service["location_id"] == h.service_location and service["tracking_support"] is True
    plus = h.client.post("/_sandbox/shops", json={"domain": "big.myshopify.com", "plan": "plus"}).get_json()
    assert plus["plan"] == "plus"
    assert h.client.get("/_sandbox/shops/big").get_json()["throttle"]["restore_rate"] == 1000
    assert h.client.get("/_sandbox/healthz").get_json()["ok"] is True


def test_order_json_shape_and_gid_paths(h):
    order = h.order(note="leave at door")
    assert order["name"] == "#1001" and order["display_fulfillment_status"] == "UNFULFILLED"
    fo = order["fulfillment_orders"][0]
    assert {
        "id",
        "status",
        "request_status",
        "assigned_location_id",
        "line_items",
        "merchant_requests",
        "holds",
        "supported_actions",
    } <= set(fo)
    assert set(fo["line_items"][0]) >= {"id", "line_item_id", "sku", "total_quantity", "remaining_quantity"}
    # A raw gid works in the path as well as the number.
    assert h.client.get(f"/_sandbox/shops/{h.shop}/orders/{order['id']}").get_json()["name"] == "#1001"
    held = h.act(fo["id"], "hold", reason="INCORRECT_ADDRESS", reason_notes="check street")
    assert held["fulfillment_orders"][0]["holds"][0]["reason_notes"] == "check street"
    assert h.act(fo["id"], "release_hold")["fulfillment_orders"][0]["status"] == "OPEN"
    assert h.act(fo["id"], "fly", expect=404)
    assert h.client.get(f"/_sandbox/shops/{h.shop}/orders/99999").status_code == 404


def test_rest_merge_without_ids_takes_every_mergeable_fulfillment_order(h):
    fo = h.order()["fulfillment_orders"][0]
    split = h.act(fo["id"], "split", line_items=[{"id": fo["line_items"][1]["id"], "quantity": 1}])
    assert len(split["fulfillment_orders"]) == 2
    merged = h.act(fo["id"], "merge")
    # As recorded: the first fulfillment order takes everything back and keeps its id; the other closes.
    by_status = {f["status"]: f for f in merged["fulfillment_orders"]}
    assert sorted(by_status) == ["CLOSED", "OPEN"]
    assert by_status["OPEN"]["id"] == fo["id"]


def test_lose_answers_loses_the_next_answers_of_one_operation_after_applying(h):
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    faults = h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"lose_answers": {"AcceptRequest": 1}})
    assert faults.get_json()["lose_answers"] == {"AcceptRequest": 1}
    accept = ACCEPT.replace("mutation(", "mutation AcceptRequest(")
    url = f"/store/{h.shop}/admin/api/2026-07/graphql.json"
    headers = {"X-Shopify-Access-Token": h.token}
    # Other operations are answered.
    assert h.client.post(url, json={"query": "query Other { shop { id } }"}, headers=headers).status_code == 200
    lost = h.client.post(url, json={"query": accept, "variables": {"id": fo}}, headers=headers)
    assert lost.status_code == 502
    assert h.client.get(f"/_sandbox/shops/{h.shop}/fulfillment_orders/{fo}").get_json()["request_status"] == "ACCEPTED"
    # Only as many as asked: the next answer arrives.
    again = h.client.post(url, json={"query": accept, "variables": {"id": fo}}, headers=headers)
    assert again.status_code == 200
    bad = h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"lose_answers": {"AcceptRequest": -1}})
    assert bad.status_code == 400
