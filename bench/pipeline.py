"""Pipeline: how close a backlog of orders comes to the store's rate limit, and what one flooded shop costs the
others.

    .venv/bin/python bench/pipeline.py [--orders 300] [--shops 20] [--flood 300] [--idle-shops 0]

Real web, Celery workers (two processes), beat and a Redis of its own; the sandbox store with faults off and
Standard-plan throttling (2000 points, restored at 100/s). Production settings otherwise (sweeps every 30 s,
1 s to pick and 1 s to pack). The simulated carrier's delivery events (three 10-point mutations a package) are
the carrier's traffic, not the pipeline's: DELIVERY_EVENT_DELAY_S puts them past the end of the run.

First line: one shop, `--orders` requested at once.

    pipeline: orders=N elapsed_s=t orders_per_s=x utilization=u cost_per_order=c floor=20 bound=b ratio=x/b
              p50_accept_s=.. p99_accept_s=..

elapsed_s runs from the first request to the last order shipped; utilization is the cost the store charged per
second, less what the run drew from the bucket it found full, over the restore rate; cost_per_order is all the
cost the store charged (sweeps included) over N; floor is the two mutations every order needs (accept and
fulfillmentCreate, 10 points each); bound = restore rate / floor is the most orders a second the rate limit
allows; accept latency runs from the merchant's request to our record of the store's acceptance. Before it, on
stderr: what an order cost per operation (the store's actual cost from the workers' `store.request` lines) with
the number of calls.

Second line: `--shops` shops of which one is flooded with `--flood` orders at once, the others ("quiet") placing
an order every few seconds; the quiet shops' p99 accept latency beside the same quiet load with no flood.

    fairness: quiet_shops=19 p99_accept_s_alone=.. p99_accept_s_with_flood=.. ratio=..

With `--idle-shops N`, N more shops are installed before the fairness part and place no orders: the schedule
sweeps them (at the safety interval, behind all other work) while the quiet and flooded shops run beside them.
Compare the line with a run without them.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/pipeline.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    STANDARD,
    ConnectedShop,
    System,
    WaitTimedOut,
    percentile,
    running_system,
    say,
    wait_for,
    warm_up,
)

SETTINGS = {
    "SWEEP_INTERVAL_S": "30",
    "PICK_DELAY_S": "1",
    "PACK_DELAY_S": "1",
    "DELIVERY_EVENT_DELAY_S": "86400",
    "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
}
SKU = "PIPE-MUG"
FLOOR = 20  # accept + fulfillmentCreate, 10 points each


def _now() -> datetime:
    return datetime.now(UTC)


def place(shop: ConnectedShop, count: int) -> list[str]:
    """`count` one-line orders, not yet requested; returns their fulfillment order ids."""
    ids = []
    for n in range(count):
        order = shop.place_order([{"sku": SKU, "title": "Pipeline mug", "quantity": 1 + n % 3}])
        ids.extend(fo["id"] for fo in order["fulfillment_orders"])
    return ids


def request_all(shop: ConnectedShop, fo_ids: list[str]) -> dict[str, datetime]:
    """Submit every request as fast as the merchant can; returns when each was submitted."""
    submitted: dict[str, datetime] = {}
    for fo_id in fo_ids:
        submitted[fo_id] = _now()
        shop.merchant.request_fulfillment(fo_id)
    return submitted


def accept_latencies(system: System, shops: list[ConnectedShop], submitted: dict[str, datetime]) -> list[float]:
    accepted = system.first_transition_times([s.shop_id for s in shops], "accepted")
    return [(accepted[fo] - at).total_seconds() for fo, at in submitted.items() if fo in accepted]


# --- one shop, a backlog -----------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    orders: int
    elapsed_s: float
    cost: float
    drawn: float  # points taken from the bucket the run found full
    restore_rate: float
    accept_s: list[float]

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.elapsed_s

    @property
    def utilization(self) -> float:
        return (self.cost - self.drawn) / self.elapsed_s / self.restore_rate

    @property
    def bound(self) -> float:
        return self.restore_rate / FLOOR

    def line(self) -> str:
        return (
            f"pipeline: orders={self.orders} elapsed_s={self.elapsed_s:.1f} orders_per_s={self.orders_per_s:.2f} "
            f"utilization={self.utilization:.2f} cost_per_order={self.cost / self.orders:.1f} floor={FLOOR} "
            f"bound={self.bound:.1f} ratio={self.orders_per_s / self.bound:.2f} "
            f"p50_accept_s={percentile(self.accept_s, 50):.1f} p99_accept_s={percentile(self.accept_s, 99):.1f}"
        )


def cost_by_operation(system: System, domain: str, orders: int) -> str:
    """What an order cost, per operation, from the workers' `store.request` lines (the store's actual cost)."""
    found: dict[str, list[int]] = {}
    pattern = re.compile(rf"store\.request shop={re.escape(domain)} operation=(\w+) .*?actual_cost=(\d+)")
    for path in sorted((system.workdir / "log").glob("worker*.log")):
        for match in pattern.finditer(path.read_text(errors="replace")):
            found.setdefault(match[1], []).append(int(match[2]))
    parts = [f"{name}={sum(costs) / orders:.2f}({len(costs)})" for name, costs in sorted(found.items())]
    return "pipeline: points per order by operation (calls): " + " ".join(parts)


def backlog(system: System, orders: int, timeout_s: float) -> PipelineResult:
    shop = system.connect_shop("pipeline-backlog.myshopify.com", throttle=STANDARD)
    fo_ids = place(shop, orders)
    # Let the bucket refill from setting up, so the run starts from a full one.
    with contextlib.suppress(WaitTimedOut):
        wait_for(lambda: shop.throttle_available() >= STANDARD["maximum_available"] - 1, 30, 0.5)
    state = shop.state()
    cost_before = float(state["cost"]["cost_charged"])
    available_before = float(state["throttle"]["currently_available"])
    started = _now()
    submitted = request_all(shop, fo_ids)
    say(f"pipeline: {orders} requests submitted in {(_now() - started).total_seconds():.1f}s")

    def all_shipped() -> bool:
        return system.state_counts([shop.shop_id]).get("shipped", 0) >= len(fo_ids)

    wait_for(all_shipped, timeout_s, 0.5, f"every order shipped within {timeout_s:.0f}s")
    state = shop.state()
    say(cost_by_operation(system, shop.domain, len(fo_ids)))
    shipped = system.first_transition_times([shop.shop_id], "shipped")
    finished = max(shipped[fo] for fo in fo_ids)
    return PipelineResult(
        orders=len(fo_ids),
        elapsed_s=(finished - started).total_seconds(),
        cost=float(state["cost"]["cost_charged"]) - cost_before,
        drawn=max(0.0, available_before - float(state["throttle"]["currently_available"])),
        restore_rate=float(state["throttle"]["restore_rate"]),
        accept_s=accept_latencies(system, [shop], submitted),
    )


# --- many shops, one flooded -------------------------------------------------------------------------------


def quiet_load(
    system: System, shops: list[ConnectedShop], per_shop: int, interval_s: float, timeout_s: float
) -> dict[str, datetime]:
    """Each quiet shop places and requests an order every `interval_s`, staggered; waits until all are accepted."""
    submitted: dict[str, datetime] = {}
    lock = threading.Lock()

    def merchant(index: int, shop: ConnectedShop) -> None:
        time.sleep(interval_s * index / len(shops))
        for _ in range(per_shop):
            began = time.monotonic()
            (fo_id,) = place(shop, 1)
            at = _now()
            shop.merchant.request_fulfillment(fo_id)
            with lock:
                submitted[fo_id] = at
            time.sleep(max(0.0, interval_s - (time.monotonic() - began)))

    with ThreadPoolExecutor(len(shops)) as pool:
        list(pool.map(merchant, range(len(shops)), shops))

    def all_accepted() -> bool:
        accepted = system.first_transition_times([s.shop_id for s in shops], "accepted")
        return all(fo in accepted for fo in submitted)

    wait_for(all_accepted, timeout_s, 0.5, "every quiet order accepted")
    return submitted


@dataclass
class FairnessResult:
    quiet_shops: int
    alone_s: list[float]
    with_flood_s: list[float]

    def line(self) -> str:
        alone, flooded = percentile(self.alone_s, 99), percentile(self.with_flood_s, 99)
        return (
            f"fairness: quiet_shops={self.quiet_shops} p99_accept_s_alone={alone:.2f} "
            f"p99_accept_s_with_flood={flooded:.2f} ratio={flooded / alone if alone else 0:.2f}"
        )


def budget_sleep_s(system: System, shop: ConnectedShop) -> float:
    """Seconds the workers have slept, all told, waiting for the shop's rate-limit budget."""
    import redis

    from fulfillment.store.throttle import RedisCostBudget

    return RedisCostBudget(redis.Redis.from_url(system.redis_url)).metrics(shop.domain).throttle_wait_seconds


def install_idle_shops(system: System, count: int, threads: int = 8) -> None:
    """`count` installed shops that never order: connected several at a time, each as an install would be."""
    if count <= 0:
        return
    began = time.monotonic()

    def connect(n: int) -> None:
        system.connect_shop(f"idle-{n + 1}.myshopify.com", subscribe_webhooks=False, throttle=STANDARD)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(connect, range(count)))
    say(f"fairness: {count} idle shops installed in {time.monotonic() - began:.1f}s")


def fairness(
    system: System,
    shops: int,
    flood: int,
    per_shop: int,
    interval_s: float,
    timeout_s: float,
    idle_shops: int = 0,
):
    quiet = shops - 1
    install_idle_shops(system, idle_shops)

    def connect(prefix: str) -> list[ConnectedShop]:
        return [system.connect_shop(f"{prefix}-{n + 1}.myshopify.com", throttle=STANDARD) for n in range(quiet)]

    alone_shops = connect("quiet-alone")
    say(f"fairness: {quiet} quiet shops, no flood")
    alone = quiet_load(system, alone_shops, per_shop, interval_s, timeout_s)
    alone_s = accept_latencies(system, alone_shops, alone)

    flooded_shop = system.connect_shop("flooded.myshopify.com", throttle=STANDARD)
    flood_ids = place(flooded_shop, flood)
    with_shops = connect("quiet-flood")
    say(f"fairness: {quiet} quiet shops beside a flood of {flood} orders")
    began, slept = time.monotonic(), budget_sleep_s(system, flooded_shop)
    request_all(flooded_shop, flood_ids)
    flooded = quiet_load(system, with_shops, per_shop, interval_s, timeout_s)
    backlog_left = flood - system.state_counts([flooded_shop.shop_id]).get("shipped", 0)
    say(f"fairness: the flooded shop still had {backlog_left} of {flood} orders to ship when the quiet ones were in")
    slept, took = budget_sleep_s(system, flooded_shop) - slept, time.monotonic() - began
    say(
        f"fairness: its steps slept {slept:.0f}s waiting for its budget over {took:.0f}s "
        f"({slept / took:.1f} worker processes on average)"
    )
    return FairnessResult(quiet, alone_s, accept_latencies(system, with_shops, flooded))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="the one shop's backlog")
    parser.add_argument("--shops", type=int, default=20, help="shops in the fairness run, one of them flooded")
    parser.add_argument("--flood", type=int, default=300, help="orders the flooded shop requests at once")
    parser.add_argument("--quiet-orders", type=int, default=6, help="orders each quiet shop places")
    parser.add_argument("--quiet-interval", type=float, default=5.0, help="seconds between a quiet shop's orders")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--skip-fairness", action="store_true")
    parser.add_argument("--skip-backlog", action="store_true", help="the fairness part alone")
    parser.add_argument("--idle-shops", type=int, default=0, help="installed shops that never order, beside them")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so that `finally` stops every process we started

    with running_system("pipeline", keep_files=lambda: args.keep_logs, settings=SETTINGS) as system:
        system.set_stock(SKU, 1_000_000)
        if args.skip_backlog:
            warm_up(system, SKU)
        else:
            result = backlog(system, args.orders, args.timeout)
            print(result.line(), flush=True)
        if not args.skip_fairness:
            fair = fairness(
                system, args.shops, args.flood, args.quiet_orders, args.quiet_interval, args.timeout, args.idle_shops
            )
            print(fair.line(), flush=True)
    return 0


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
