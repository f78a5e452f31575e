"""Fixtures for the sandbox store's own tests: an app per test (Flask test client) and a tiny HTTP receiver for
callbacks and webhooks."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from sandbox import create_app

SECRET = "sandbox-test-secret"
SHOP = "demo.myshopify.com"

SERVICE_CREATE = """
mutation($name: String!, $url: URL) {
  fulfillmentServiceCreate(name: $name, callbackUrl: $url, trackingSupport: true, inventoryManagement: true) {
    fulfillmentService { id handle location { id } }
    userErrors { field message }
  }
}"""

FO_FIELDS = """
id status requestStatus orderName
supportedActions { action }
assignedLocation { name location { id } }
lineItems(first: 20) { nodes { id sku totalQuantity remainingQuantity lineItem { id sku } } }
merchantRequests(first: 10) { nodes { kind message requestOptions sentAt } }
fulfillmentHolds { id reason reasonNotes }
"""


@dataclass
class Harness:
    """One sandbox app with a shop, the app installed, and its fulfillment service registered."""

    client: Any
    app: Any
    shop: str = SHOP
    merchant_token: str = ""
    token: str = ""
    service_location: str = ""
    shop_location: str = ""

    @property
    def sandbox(self) -> Any:
        return self.app.extensions["sandbox"]

    def gql(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        response = self.client.post(
            f"/store/{self.shop}/admin/api/2026-07/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": token or self.token},
        )
        assert response.status_code == 200, response.data
        return response.get_json()

    def mutate(self, name: str, args: str, variables: dict, payload: str, token: str | None = None) -> dict:
        """Run one mutation and return its payload (fails on top-level errors)."""
        decl = ", ".join(f"${k}: {t}" for k, t in _types(args).items())
        call = ", ".join(f"{k}: ${k}" for k in _types(args))
        body = self.gql(f"mutation({decl}) {{ {name}({call}) {{ {payload} }} }}", variables, token)
        assert "errors" not in body, body
        return body["data"][name]

    def order(self, line_items: list[dict] | None = None, **fields: Any) -> dict:
        response = self.client.post(
            f"/_sandbox/shops/{self.shop}/orders",
            json={
                "line_items": line_items or [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
                "shipping_address": {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "address1": "1 Road",
                    "city": "Oslo",
                    "country_code": "NO",
                    "zip": "0150",
                },
                **fields,
            },
        )
        assert response.status_code == 201, response.data
        return response.get_json()

    def show(self, order_id: str) -> dict:
        return self.client.get(f"/_sandbox/shops/{self.shop}/orders/{order_id.rsplit('/', 1)[-1]}").get_json()

    def act(self, fo_id: str, action: str, expect: int = 200, **body: Any) -> dict:
        response = self.client.post(
            f"/_sandbox/shops/{self.shop}/fulfillment_orders/{fo_id.rsplit('/', 1)[-1]}/{action}", json=body
        )
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def fo(self, fo_id: str) -> dict:
        body = self.gql(f"query($id: ID!) {{ fulfillmentOrder(id: $id) {{ {FO_FIELDS} }} }}", {"id": fo_id})
        return body["data"]["fulfillmentOrder"]

    def state(self) -> dict:
        return self.client.get(f"/_sandbox/shops/{self.shop}").get_json()


def _types(args: str) -> dict[str, str]:
    """`"id: ID!, message: String"` -> {"id": "ID!", "message": "String"}."""
    pairs = [a.split(":", 1) for a in args.split(",") if a.strip()]
    return {k.strip(): t.strip() for k, t in pairs}


def make_harness(workflow: str = "fulfillment_orders", callback_url: str | None = None, **shop: Any) -> Harness:
    app = create_app(
        {
            "SHOPIFY_API_KEY": "test-key",
            "SHOPIFY_API_SECRET": SECRET,
            "webhook_retry_delays_s": [0.05, 0.05],
            "callback_timeout_s": 2,
            "webhook_timeout_s": 2,
        }
    )
    client = app.test_client()
    created = client.post("/_sandbox/shops", json={"domain": SHOP, "workflow": workflow, **shop}).get_json()
    h = Harness(client=client, app=app, merchant_token=created["merchant_token"])
    h.shop_location = created["locations"][0]["id"]
    h.token = client.post(f"/_sandbox/shops/{SHOP}/app_installs", json={"scopes": "write_fulfillments"}).get_json()[
        "access_token"
    ]
    body = h.gql(SERVICE_CREATE, {"name": "Acme 3PL", "url": callback_url})
    service = body["data"]["fulfillmentServiceCreate"]["fulfillmentService"]
    h.service_location = service["location"]["id"]
    return h


@pytest.fixture
def make() -> Iterator[Any]:
    """Build harnesses with other shop options (workflow, auto_fulfill, callback url...)."""
    made: list[Harness] = []

    def build(**options: Any) -> Harness:
        harness = make_harness(**options)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.sandbox.notifier.shutdown()


@pytest.fixture
def h(make: Any) -> Harness:
    return make()


@pytest.fixture
def served(h: Harness) -> Iterator[str]:
    """The harness's sandbox served over real HTTP on a free local port; yields its base URL."""
    server = make_server("127.0.0.1", 0, h.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server recording every POST; `statuses` scripts the answers (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)  # bodies for GETs (then `{}`)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            state.requests.append(Received(self.path, dict(self.headers.items()), b""))
            body = state.answers.pop(0) if state.answers else b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
