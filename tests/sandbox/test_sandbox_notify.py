"""Signed callbacks and webhooks, checked on a real local HTTP server; their retries and injected faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from types import SimpleNamespace

from sandbox.faults import Faults
from sandbox.model import Callback
from sandbox.notify import Notifier, rest_topic, sign

SECRET = "sandbox-test-secret"  # the one conftest configures


def expected_hmac(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def subscribe(h, topic: str, url: str) -> dict:
    query = """mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
      webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
        webhookSubscription { id topic uri format createdAt } userErrors { field message } } }"""
    body = h.gql(query, {"topic": topic, "sub": {"uri": url, "format": "JSON"}})
    return body["data"]["webhookSubscriptionCreate"]


def wait(h) -> None:
    assert h.sandbox.notifier.wait_idle(10)


def test_fulfillment_request_pings_the_callback_url_signed_over_the_raw_body(make, receiver):
    h = make(callback_url=f"{receiver.url}/fulfillment")
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request", message="hi")
    wait(h)
    [ping] = receiver.requests
    assert ping.path == "/fulfillment/fulfillment_order_notification"
    assert json.loads(ping.body) == {"kind": "FULFILLMENT_REQUEST"}
    assert ping.headers["X-Shopify-Hmac-Sha256"] == expected_hmac(ping.body)
    assert ping.headers["X-Shopify-Shop-Domain"] == "demo.myshopify.com"
    assert ping.headers["X-Shopify-API-Version"] == "2026-07"
    assert ping.headers["Content-Type"] == "application/json"
    h.gql(
        "mutation($id: ID!) { fulfillmentOrderAcceptFulfillmentRequest(id: $id) { userErrors { message } } }",
        {"id": fo},
    )
    h.act(fo, "submit_cancellation_request", message="stop")
    wait(h)
    assert json.loads(receiver.requests[-1].body) == {"kind": "CANCELLATION_REQUEST"}
    sent = h.state()["callbacks_sent"]
    assert [(c["kind"], c["status"]) for c in sent] == [("FULFILLMENT_REQUEST", 200), ("CANCELLATION_REQUEST", 200)]


def test_a_failed_callback_is_recorded_and_not_retried(make, receiver):
    h = make(callback_url=receiver.url)
    receiver.statuses = [500]
    h.act(h.order()["fulfillment_orders"][0]["id"], "submit_fulfillment_request")
    wait(h)
    assert len(receiver.requests) == 1
    assert h.state()["callbacks_sent"][0]["status"] == 500


def test_callbacks_never_go_to_merchant_locations_or_services_without_a_url(h, receiver):
    h.act(h.order()["fulfillment_orders"][0]["id"], "submit_fulfillment_request")
    wait(h)
    assert h.state()["callbacks_sent"] == []


def test_webhook_headers_payload_and_retry_with_the_same_webhook_id(h, receiver):
    created = subscribe(h, "FULFILLMENT_ORDERS_CANCELLED", f"{receiver.url}/webhooks")
    assert created["userErrors"] == [] and created["webhookSubscription"]["uri"] == f"{receiver.url}/webhooks"
    listed = h.gql("{ webhookSubscriptions(first: 5) { nodes { topic uri } } }")["data"]["webhookSubscriptions"]
    assert listed["nodes"] == [{"topic": "FULFILLMENT_ORDERS_CANCELLED", "uri": f"{receiver.url}/webhooks"}]
    receiver.statuses = [503]
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    result = h.act(fo, "cancel")
    replacement = [f["id"] for f in result["fulfillment_orders"] if f["id"] != fo][0]
    wait(h)
    first, second = receiver.requests
    assert first.headers["X-Shopify-Webhook-Id"] == second.headers["X-Shopify-Webhook-Id"]
    headers = second.headers
    assert headers["X-Shopify-Topic"] == "fulfillment_orders/cancelled"
    assert headers["X-Shopify-Hmac-Sha256"] == expected_hmac(second.body)
    assert headers["X-Shopify-Shop-Domain"] == "demo.myshopify.com"
    assert headers["X-Shopify-API-Version"] == "2026-07"
    assert headers["X-Shopify-Event-Id"] and headers["X-Shopify-Triggered-At"].endswith("Z")
    payload = json.loads(second.body)
    assert payload["fulfillment_order"] == {
        "id": fo,
        "status": "closed",
        "request_status": "submitted",
        "assigned_location_id": h.service_location,
    }
    assert payload["replacement_fulfillment_order"]["id"] == replacement
    outbox = h.state()["webhooks_sent"]
    assert [(w["attempt"], w["status"]) for w in outbox] == [(1, 503), (2, 200)]


def test_fulfillments_create_and_app_uninstalled(h, receiver):
    subscribe(h, "FULFILLMENTS_CREATE", f"{receiver.url}/f")
    subscribe(h, "APP_UNINSTALLED", f"{receiver.url}/u")
    fo = h.order()["fulfillment_orders"][0]["id"]
    h.act(fo, "mark_fulfilled", tracking_number="T1", company="DHL")
    h.client.delete(f"/_sandbox/shops/{h.shop}/app_installs")
    wait(h)
    by_path = {r.path: r for r in receiver.requests}
    created = json.loads(by_path["/f"].body)
    assert created["name"] == "#1001.1" and created["tracking_number"] == "T1" and created["status"] == "success"
    assert by_path["/f"].headers["X-Shopify-Topic"] == "fulfillments/create"
    assert json.loads(by_path["/u"].body)["myshopify_domain"] == "demo.myshopify.com"
    assert by_path["/u"].headers["X-Shopify-Topic"] == "app/uninstalled"
    assert (
        h.client.post(
            "/admin/api/2026-07/graphql.json",
            json={"query": "{ shop { id } }"},
            headers={"X-Shopify-Access-Token": h.token},
        ).status_code
        == 401
    )


def test_topic_names():
    assert rest_topic("FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_SUBMITTED") == (
        "fulfillment_orders/fulfillment_request_submitted"
    )
    assert rest_topic("FULFILLMENTS_UPDATE") == "fulfillments/update"
    assert rest_topic("APP_UNINSTALLED") == "app/uninstalled"
    assert sign("k", b"{}") == base64.b64encode(hmac.new(b"k", b"{}", hashlib.sha256).digest()).decode()


def test_faults_drop_and_duplicate_callbacks(make, receiver):
    h = make(callback_url=receiver.url)
    assert h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"drop_rate": 1.0}).status_code == 200
    h.act(h.order()["fulfillment_orders"][0]["id"], "submit_fulfillment_request")
    wait(h)
    assert receiver.requests == []
    assert h.state()["callbacks_sent"][0]["fault"] == "dropped"
    h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"drop_rate": 0, "duplicate_rate": 1.0, "delay_s": 0.05})
    h.act(h.order()["fulfillment_orders"][0]["id"], "submit_fulfillment_request")
    wait(h)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    faults = h.client.get(f"/_sandbox/shops/{h.shop}/faults").get_json()
    assert faults["duplicate_rate"] == 1.0 and faults["delay_s"] == 0.05
    bad = h.client.put(f"/_sandbox/shops/{h.shop}/faults", json={"drop_rate": 2})
    assert bad.status_code == 400


def test_fetch_stock_asks_the_service_signed_over_the_query_and_keeps_the_answer(make, receiver):
    h = make(callback_url=f"{receiver.url}/cb")
    receiver.answers = [b'{"SKU-1": 12, "SKU-2": 0}', b'{"stock_levels": {"SKU-1": 7}}']
    first = h.client.post(f"/_sandbox/shops/{h.shop}/fetch_stock", json={}).get_json()["results"][0]
    assert first["status"] == 200 and first["stock"] == {"SKU-1": 12, "SKU-2": 0}
    ping = receiver.requests[0]
    path, _, query = ping.path.partition("?")
    assert path == "/cb/fetch_stock" and query == "shop=demo.myshopify.com"
    assert ping.headers["X-Shopify-Hmac-Sha256"] == expected_hmac(query.encode())
    second = h.client.post(f"/_sandbox/shops/{h.shop}/fetch_stock", json={"sku": "SKU-1", "json_suffix": True})
    assert second.get_json()["results"][0]["stock"] == {"SKU-1": 7}  # the legacy reading
    assert receiver.requests[1].path == "/cb/fetch_stock.json?shop=demo.myshopify.com&sku=SKU-1"
    assert h.client.get(f"/_sandbox/shops/{h.shop}/stock").get_json() == {h.service_location: {"SKU-1": 7, "SKU-2": 0}}


def test_fetch_tracking_numbers_fills_in_fulfillments_without_tracking(make, receiver):
    h = make(callback_url=f"{receiver.url}/cb")
    order = h.order()
    fo = order["fulfillment_orders"][0]["id"]
    h.act(fo, "submit_fulfillment_request")
    h.gql(
        "mutation($id: ID!) { fulfillmentOrderAcceptFulfillmentRequest(id: $id) { userErrors { message } } }",
        {"id": fo},
    )
    h.gql(
        "mutation($id: ID!) { fulfillmentCreate(fulfillment: "
        "{lineItemsByFulfillmentOrder: [{fulfillmentOrderId: $id}]}) { userErrors { message } } }",
        {"id": fo},
    )
    wait(h)
    receiver.requests.clear()
    receiver.answers = [b'{"tracking_numbers": {"#1001.1": "TRK-1"}, "message": "ok", "success": true}']
    result = h.client.post(f"/_sandbox/shops/{h.shop}/fetch_tracking_numbers", json={}).get_json()["results"][0]
    assert result["updated"] == ["#1001.1"]
    assert receiver.requests[0].path == "/cb/fetch_tracking_numbers?order_names%5B%5D=%231001.1&shop=demo.myshopify.com"
    shown = h.show(order["id"])
    assert shown["fulfillments"][0]["tracking_info"][0]["number"] == "TRK-1"
    # Nothing left to ask about.
    assert h.client.post(f"/_sandbox/shops/{h.shop}/fetch_tracking_numbers", json={}).get_json()["results"] == []


def test_one_shops_burst_of_notices_does_not_hold_back_another_shops(monkeypatch):
    sent: list[str] = []
    release = threading.Event()

    class Answer:
        status_code = 200

    def post(url, data, headers, timeout):
        release.wait(10)  # the first notice holds the only thread while the burst queues behind it
        sent.append(headers["X-Shopify-Shop-Domain"])
        return Answer()

    notifier = Notifier(SECRET, threading.Lock(), workers=1, post=post)
    flooded, quiet = (
        SimpleNamespace(domain=name, faults=Faults(), callbacks_sent=[])
        for name in ("flooded.myshopify.com", "quiet.myshopify.com")
    )
    for _ in range(20):
        notifier(flooded, Callback(url="http://127.0.0.1:9", kind="FULFILLMENT_REQUEST"))
    notifier(quiet, Callback(url="http://127.0.0.1:9", kind="FULFILLMENT_REQUEST"))
    release.set()
    assert notifier.wait_idle(10)
    notifier.shutdown()
    assert len(sent) == 21
    assert sent.index("quiet.myshopify.com") <= 2  # after the notice in flight and the burst's next, not its 20th
