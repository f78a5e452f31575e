"""`python3 dev.py up`: the whole system on this machine, with a sandbox store and demo orders flowing through.

Starts an embedded Redis (unless REDIS_URL is set), migrates the database (a SQLite file unless DATABASE_URL is
set), starts the sandbox store, web, worker and beat, connects a demo shop, places DEMO_ORDERS orders, requests
their fulfilment as a merchant would, and prints their progress until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from urllib.parse import urlsplit

from devstack.merchant import Merchant
from devstack.processes import ROOT, Stack, pick_port

VAR = ROOT / "var"
DEMO_SHOP = "demo-shop.myshopify.com"
DEMO_SKUS = [("TSHIRT-BLK-M", "Black T-shirt, M"), ("MUG-LOGO", "Logo mug"), ("CAP-RED", "Red cap")]


def say(message: str) -> None:
    print(message, flush=True)


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SHOPIFY_API_KEY", "demo-api-key")
    env.setdefault("SHOPIFY_API_SECRET", "demo-api-secret")
    env.setdefault("SECRET_KEY", "demo-secret-key")
    env.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'fulfillment.db'}")
    env.setdefault("PICK_DELAY_S", "1")
    env.setdefault("PACK_DELAY_S", "1")
    env.setdefault("SWEEP_INTERVAL_S", "15")
    env.setdefault("SIMULATOR_DEFAULT_STOCK", "100")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def place_demo_orders(merchant: Merchant, count: int, location_id: str) -> list[str]:
    order_ids = []
    for n in range(count):
        sku, title = DEMO_SKUS[n % len(DEMO_SKUS)]
        order = merchant.create_order(
            [{"sku": sku, "title": title, "quantity": 1 + n % 3, "location_id": location_id}],
            shipping_address={
                "first_name": "Demo",
                "last_name": f"Customer {n + 1}",
                "address1": f"{n + 1} Harbour Street",
                "city": "Oslo",
                "province": "",
                "country_code": "NO",
                "zip": "0150",
            },
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
    total = None
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
        total = count
        if fulfilled != fulfilled_before:
            say(f"demo: {fulfilled}/{total} fulfillment orders fulfilled")
            fulfilled_before = fulfilled
            if total and fulfilled == total:
                show_timelines(merchant, order_ids)
        time.sleep(1)


def main() -> int:
    count = int(os.environ.get("DEMO_ORDERS", "5"))
    VAR.mkdir(exist_ok=True)
    env = base_env()
    stack = Stack(env, VAR / "log")

    def shutdown(*_args) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        if not os.environ.get("REDIS_URL"):
            _, env["REDIS_URL"] = stack.redis(VAR / "redis")
            say(f"redis: embedded at {env['REDIS_URL']}")
        app_port = pick_port(int(os.environ.get("APP_PORT", "8000")))
        sandbox_port = pick_port(int(os.environ.get("SANDBOX_PORT", "8700")))
        env.setdefault("APP_URL", f"http://127.0.0.1:{app_port}")
        env.setdefault("STORE_BASE_URL", f"http://127.0.0.1:{sandbox_port}")
        env["SANDBOX_PUBLIC_URL"] = env["STORE_BASE_URL"]
        # The sandbox, like the store, takes a callback URL only on the app's own host.
        env.setdefault("SANDBOX_APP_HOSTS", urlsplit(env["APP_URL"]).hostname or "")
        os.environ.update(env)

        from fulfillment.config import Config
        from fulfillment.context import Context
        from fulfillment.migrate import upgrade
        from fulfillment.shops import connect_shop

        config = Config.from_env()
        upgrade(config.database_url)
        say(f"database: {config.database_url}")

        stack.sandbox(sandbox_port)
        stack.web(app_port)
        stack.worker()
        stack.beat(VAR / "celerybeat-schedule")
        say(f"sandbox store: {env['STORE_BASE_URL']}  (shop {DEMO_SHOP}; REST API under /_sandbox)")
        say(f"app:           {env['APP_URL']}  (health: {env['APP_URL']}/readyz)")
        say(f"logs:          {VAR / 'log'}")

        merchant = Merchant(env["STORE_BASE_URL"], DEMO_SHOP)
        merchant.create_shop(plan="standard")
        token = merchant.install_app(
            "write_fulfillments,read_assigned_fulfillment_orders,"
            "write_assigned_fulfillment_orders,read_inventory,read_orders"
        )
        ctx = Context.from_config(config)
        connect_shop(ctx, DEMO_SHOP, token)
        location_id = merchant.service_location_id()
        say(f"shop {DEMO_SHOP} connected; our location {location_id}")

        order_ids = place_demo_orders(merchant, count, location_id)
        say("demo: following the orders (Ctrl-C stops everything)")
        follow(merchant, order_ids)
    except KeyboardInterrupt:
        say("\nstopping...")
    except Exception as exc:
        say(f"error: {exc}")
        say(f"see the logs in {VAR / 'log'}")
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
