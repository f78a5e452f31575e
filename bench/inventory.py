"""Inventory pushed to the store: many stock changes, few pushes, and how stale the store's figure gets.

    .venv/bin/python bench/inventory.py [--changes 10000] [--shops 20] [--skus 50] [--seconds 90] [--database-url URL]

Real web, a Celery worker process, beat and a Redis of its own; the sandbox store with faults off and
Standard-plan throttling (2000 points, restored at 100/s) for every shop. Production settings otherwise (beat looks
for shelves owed a push every 2 s). Each shop has `--skus` products stocked at our location; `--changes` receipts
and adjustments, spread evenly over `--seconds` and over the shops' SKUs at random, are written to our books as the
dashboard or a WMS feed would, one transaction each. When every shelf is pushed, the store's `on_hand` of every
item at our location is checked against our shelf (the run fails on any difference). Its last line:

    inventory: changes=N pushes=M points_per_change=x max_staleness_s=y utilization=u

- changes: stock movements written (N).
- pushes: `inventorySetQuantities` calls the store applied (its inventory adjustment groups made by the app): each
  carries the latest figure of every item of a shop that changed since the last one, so M is far below N.
- points_per_change: every cost point the store charged the app for all shops from the first change to the last
  push (SKU matching, pushes, re-reads), over N.
- max_staleness_s: the longest any change waited, from its commit in our books to the push that carried it being
  recorded as applied (the shelf's oldest unpushed change; read from the worker's `inventory_push` log lines).
- utilization: the points the store charged per second over that window, over the shops' summed restore rate
  (20 x 100 points/s): the share of the rate limit the pushes take from the shops' fulfilment work.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # `python bench/inventory.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.common import STANDARD, ConnectedShop, System, running_system, say, wait_for

SETTINGS = {"SWEEP_INTERVAL_S": "30", "DELIVERY_EVENT_DELAY_S": "86400"}


def stock_products(shop: ConnectedShop, skus: list[str]) -> dict[str, str]:
    """One product with a variant per SKU, tracked and stocked at our location; SKU -> inventory item id."""
    answer = requests.post(
        f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/products",
        json={
            "title": "Bench catalogue",
            "variants": [
                {"sku": sku, "title": sku, "tracked": True, "quantities": {shop.location_id: 0}} for sku in skus
            ],
        },
        timeout=30,
    )
    answer.raise_for_status()
    return {v["sku"]: v["inventory_item"]["id"] for v in answer.json()["variants"]}


def cost_charged(system: System, shops: list[ConnectedShop]) -> float:
    return sum(float(shop.state()["cost"]["cost_charged"]) for shop in shops)


def app_pushes(shop: ConnectedShop) -> int:
    answer = requests.get(f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/inventory_adjustments", timeout=30)
    answer.raise_for_status()
    return sum(1 for group in answer.json()["adjustment_groups"] if group["app"])


def owed(system: System) -> list[int]:
    from fulfillment import inventory_sync

    ctx = system.context()
    with ctx.db.transaction() as session:
        return inventory_sync.shops_due(session)


def differences(shop: ConnectedShop, items: dict[str, str]) -> list[str]:
    from sqlalchemy import select

    from fulfillment.models import StockLevel

    ctx = shop.system.context()
    with ctx.db.transaction() as session:
        rows = session.execute(select(StockLevel.sku, StockLevel.on_hand).where(StockLevel.shop_id == shop.shop_id))
        ours = {sku: on_hand for sku, on_hand in rows}
    wrong = []
    for sku, item_id in items.items():
        answer = requests.get(
            f"{shop.system.sandbox_url}/_sandbox/shops/{shop.domain}/inventory_items/{item_id}", timeout=30
        )
        (level,) = [lv for lv in answer.json()["levels"] if lv["location_id"] == shop.location_id]
        if level["quantities"]["on_hand"] != ours.get(sku, 0):
            wrong.append(f"{shop.domain} {sku}: store {level['quantities']['on_hand']} ours {ours.get(sku, 0)}")
    return wrong


def worker_staleness(system: System) -> float:
    worst = 0.0
    for path in (system.workdir / "log").glob("worker*.log"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue
            found = re.search(r"^inventory_push .*max_staleness_s=([0-9.]+)", message)
            if found:
                worst = max(worst, float(found.group(1)))
    return worst


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with running_system(
        "inventory", workers=1, concurrency=2, settings=SETTINGS, database_url=args.database_url
    ) as system:
        say(f"inventory: connecting {args.shops} shops with {args.skus} SKUs each")
        shops = [system.connect_shop(f"inv-bench-{n}.myshopify.com") for n in range(args.shops)]
        for shop in shops:
            requests.put(f"{system.sandbox_url}/_sandbox/shops/{shop.domain}/throttle", json=STANDARD, timeout=10)
        skus = [f"BENCH-{n:03d}" for n in range(args.skus)]
        with ThreadPoolExecutor(8) as pool:
            catalogues = list(pool.map(lambda s: stock_products(s, skus), shops))
        # The install's own push (nothing on our shelves yet) is not part of the run.
        time.sleep(3)
        cost_before = cost_charged(system, shops)
        pushes_before = sum(app_pushes(s) for s in shops)

        ctx = system.context()
        started = time.monotonic()
        interval = args.seconds / args.changes
        say(f"inventory: writing {args.changes} changes over {args.seconds:.0f} s")
        for n in range(args.changes):
            shop = shops[rng.randrange(len(shops))]
            sku = skus[rng.randrange(len(skus))]
            with ctx.db.transaction() as session:
                warehouse = ctx.warehouse(session)
                on_hand = warehouse.stock_levels(shop.shop_id, sku).get(sku, 0)
                if on_hand > 0 and rng.random() < 0.3:
                    warehouse.adjust(shop.shop_id, sku, -1, actor="bench", note="damaged")
                else:
                    warehouse.receive(shop.shop_id, sku, rng.randint(1, 5), actor="bench")
            behind = started + (n + 1) * interval - time.monotonic()
            if behind > 0:
                time.sleep(behind)
        say("inventory: waiting for every shelf to be pushed")
        wait_for(lambda: not owed(system), timeout=300, interval=0.5, what="every shelf pushed")
        elapsed = time.monotonic() - started
        cost = cost_charged(system, shops) - cost_before
        pushes = sum(app_pushes(s) for s in shops) - pushes_before
        wrong = [w for shop, items in zip(shops, catalogues, strict=True) for w in differences(shop, items)]
        for line in wrong[:10]:
            say(f"inventory: WRONG {line}")
        staleness = worker_staleness(system)
        rate = args.shops * STANDARD["restore_rate"]
        print(
            f"inventory: changes={args.changes} pushes={pushes} points_per_change={cost / args.changes:.3f} "
            f"max_staleness_s={staleness:.2f} utilization={cost / elapsed / rate:.4f}",
            flush=True,
        )
        return 1 if wrong else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--skus", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--database-url", help="an empty database to run on (PostgreSQL); a new SQLite file if unset")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
