"""The demo `dev.py up` runs beside the stack: once the store and the app answer, it creates a demo operator,
connects the demo shop as an install would, places DEMO_ORDERS orders, requests their fulfilment as a merchant
would, and prints their progress (`demo: K/N fulfillment orders fulfilled`) until stopped."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

from devstack.merchant import Merchant
from devstack.processes import BIN, ROOT, wait_http
from devstack.run import VAR
from devstack.system import ADDRESS, connect_shop

DEMO_SHOP = "demo-shop.myshopify.com"
DEMO_OPERATOR = "demo-operator@example.com"
DEMO_SKUS = [("TSHIRT-BLK-M", "Black T-shirt, M"), ("MUG-LOGO", "Logo mug"), ("CAP-RED", "Red cap")]


def say(message: str) -> None:
    print(message, flush=True)


def create_demo_operator() -> str:
    """A dashboard account for this run only (the run's database is new); returns its password."""
    password = secrets.token_urlsafe(12)
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "create-operator", "--email", DEMO_OPERATOR],
        env={**os.environ, "OPERATOR_PASSWORD": password},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"create-operator failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return password


def place_demo_orders(merchant: Merchant, count: int, location_id: str) -> list[str]:
    order_ids = []
    for n in range(count):
        sku, title = DEMO_SKUS[n % len(DEMO_SKUS)]
        order = merchant.create_order(
            [{"sku": sku, "title": title, "quantity": 1 + n % 3, "location_id": location_id}],
            shipping_address={**ADDRESS, "first_name": "Demo", "last_name": f"Customer {n + 1}"},
            paid=True,
        )
        for fo in order["fulfillment_orders"]:
            merchant.request_fulfillment(fo["id"], message=f"Demo order {n + 1}: please gift-wrap.")
        order_ids.append(order["id"])
        say(f"demo: placed {order['name']} and requested fulfilment")
    return order_ids


def show_timelines(merchant: Merchant, order_ids: list[str]) -> None:
    for order_id in order_ids:
        order = merchant.order(order_id)
        say(f"timeline of {order['name']}:")
        for entry in order["timeline"]:
            say(f"    {entry['at']}  {entry['message']}")


def follow(merchant: Merchant, order_ids: list[str]) -> None:
    """Print each fulfillment order's change of status, and the tally each time one completes."""
    seen: dict[str, tuple] = {}
    fulfilled_before = -1
    while True:
        fulfilled = 0
        count = 0
        for order_id in order_ids:
            order = merchant.order(order_id)
            for fo in order["fulfillment_orders"]:
                if fo["status"] == "CLOSED" and fo["request_status"] in ("CANCELLATION_ACCEPTED", "UNSUBMITTED"):
                    continue
                count += 1
                key = (fo["status"], fo["request_status"])
                if seen.get(fo["id"]) != key:
                    seen[fo["id"]] = key
                    say(f"  {order['name']} {fo['id'].rsplit('/', 1)[-1]}: {fo['status']} / {fo['request_status']}")
                if fo["status"] == "CLOSED" and all(li["remaining_quantity"] == 0 for li in fo["line_items"]):
                    fulfilled += 1
        if fulfilled != fulfilled_before:
            say(f"demo: {fulfilled}/{count} fulfillment orders fulfilled")
            fulfilled_before = fulfilled
            if count and fulfilled == count:
                show_timelines(merchant, order_ids)
        time.sleep(1)


def main() -> int:
    from fulfillment.config import Config
    from fulfillment.context import Context

    count = int(os.environ.get("DEMO_ORDERS", "5"))
    config = Config.from_env()
    store, app = config.store_base_url, config.app_url
    try:
        wait_http(f"{store}/_sandbox/healthz")
        wait_http(f"{app}/healthz")
        password = create_demo_operator()
        merchant = Merchant(store, DEMO_SHOP)
        merchant.create_shop(plan="standard")
        connect_shop(Context.from_config(config), merchant)
        location_id = merchant.service_location_id()
    except Exception as exc:  # one line, then honcho stops the stack
        say(f"demo: could not start: {exc} (see the logs in {VAR / 'log'})")
        return 1
    say(f"sandbox store: {store}  (shop {DEMO_SHOP}; its merchant REST API under /_sandbox)")
    say(f"app:           {app}  (health: {app}/readyz)")
    say(f"dashboard:     {app}/dashboard  (sign in as {DEMO_OPERATOR} / {password}, for this run only)")
    say(f"shop {DEMO_SHOP} connected; our location {location_id}")
    order_ids = place_demo_orders(merchant, count, location_id)
    say("demo: following the orders (Ctrl-C stops everything)")
    follow(merchant, order_ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
