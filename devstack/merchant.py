"""The merchant's side of the sandbox store, over its REST API: what the demo and the end-to-end tests drive."""

from __future__ import annotations

from dataclasses import dataclass

import requests


class MerchantActionRefused(Exception):
    def __init__(self, status: int, body: dict | str):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Merchant:
    base_url: str  # the sandbox, e.g. http://127.0.0.1:8700
    shop: str
    session: requests.Session | None = None

    def __post_init__(self) -> None:
        self.session = self.session or requests.Session()

    def _call(self, method: str, path: str, json: dict | None = None, ok: tuple[int, ...] = (200, 201)) -> dict:
        response = self.session.request(method, f"{self.base_url}/_sandbox{path}", json=json, timeout=30)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code not in ok:
            raise MerchantActionRefused(response.status_code, body)
        return body

    # shop
    def create_shop(self, **options) -> dict:
        return self._call("POST", "/shops", {"domain": self.shop, **options})

    def install_app(self, scopes: str = "") -> str:
        return self._call("POST", f"/shops/{self.shop}/app_installs", {"scopes": scopes})["access_token"]

    def state(self) -> dict:
        return self._call("GET", f"/shops/{self.shop}")

    def set_faults(self, **faults) -> dict:
        return self._call("PUT", f"/shops/{self.shop}/faults", faults)

    def service_location_id(self) -> str:
        services = self.state()["fulfillment_services"]
        return services[0]["location_id"]

    # orders
    def create_order(self, line_items: list[dict], **fields) -> dict:
        return self._call("POST", f"/shops/{self.shop}/orders", {"line_items": line_items, **fields})

    def order(self, order_id: str) -> dict:
        return self._call("GET", f"/shops/{self.shop}/orders/{order_id.rsplit('/', 1)[-1]}")

    def orders(self) -> list[dict]:
        body = self._call("GET", f"/shops/{self.shop}/orders")
        return body["orders"] if isinstance(body, dict) else body

    def edit_order(self, order_id: str) -> dict:
        return self._call("POST", f"/shops/{self.shop}/orders/{order_id.rsplit('/', 1)[-1]}/edit", {})

    # fulfillment orders
    def act(self, fulfillment_order_id: str, action: str, **payload) -> dict:
        fo = fulfillment_order_id.rsplit("/", 1)[-1]
        return self._call("POST", f"/shops/{self.shop}/fulfillment_orders/{fo}/{action}", payload)

    def request_fulfillment(self, fulfillment_order_id: str, message: str | None = None, **payload) -> dict:
        return self.act(fulfillment_order_id, "submit_fulfillment_request", message=message, **payload)

    def request_cancellation(self, fulfillment_order_id: str, message: str | None = None) -> dict:
        return self.act(fulfillment_order_id, "submit_cancellation_request", message=message)
