"""Chaos: orders flow through the whole system while the store misbehaves, merchants change their minds,
workers crash and Redis loses everything; then every order is checked on the store's side.

    .venv/bin/python bench/chaos.py --orders 300 --shops 3

Real web, real Celery workers (two processes), beat, and a Redis server of its own (on a free port, nothing
persisted). The sandbox store answers 10% of the app's requests with a 5xx, lets 5% time out, loses 5% of its
answers after applying them, drops 30% of its callbacks and webhooks and sends 20% twice, with Standard-plan
throttling (2000 points, 100/s). Merchants withdraw, resubmit, cancel, reset and move some orders. Mid-run a
worker is killed with SIGKILL twice and Redis is restarted once, empty.

The last line is the verdict, `chaos: orders=N fulfilled=a cancelled=b rejected=c lost=0 doubled=0 wrong=0
elapsed_s=t`: lost = an order left in no final state (the store still waits on us, or our record is not final),
doubled = a line item fulfilled beyond its quantity or two fulfillments with one tracking number, wrong = a
final state other than what the merchant's actions call for. Exit status 0 only when all three are zero.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/chaos.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import STANDARD, ConnectedShop, MerchantActionRefused, System, running_system, say

FAULTS = {
    "error_rate": 0.10,
    "timeout_rate": 0.05,
    "timeout_s": 12.0,  # just past the app's 10 s client timeout
    "lost_response_rate": 0.05,
    "drop_rate": 0.30,
    "duplicate_rate": 0.20,
}
SETTINGS = {
    # The reconciliation bounds: a dropped callback is found by the shop's next scheduled sweep, within 5 s while
    # we hold open work for it and within 15 s when it is idle.
    "SWEEP_INTERVAL_S": "5",
    "IDLE_SWEEP_INTERVAL_S": "15",
    "PICK_DELAY_S": "1",
    "PACK_DELAY_S": "1",
    "DELIVERY_EVENT_DELAY_S": "5",
    "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
}
SKUS = ("CHAOS-MUG", "CHAOS-TEE", "CHAOS-CAP")
SOLD_OUT = "CHAOS-SOLD-OUT"
# What merchants do with an order, and how often.
KINDS = (
    ("plain", 0.50),  # request fulfilment and wait
    ("reject", 0.06),  # a sold-out item: we must reject
    ("withdraw", 0.08),  # withdraw the request at once
    ("resubmit", 0.08),  # withdraw, then request the replacement fulfillment order again
    ("cancel", 0.10),  # ask us to cancel once we accepted
    ("reset", 0.09),  # ask us to cancel, then reset to unfulfilled before we answer
    ("move", 0.09),  # withdraw, then move the order to the merchant's own location
)
PENDING_ON_US = {"SUBMITTED", "ACCEPTED", "CANCELLATION_REQUESTED", "CANCELLATION_REJECTED"}
FINAL_STATUSES = {"CLOSED", "CANCELLED", "INCOMPLETE"}
FINAL_RECORD_STATES = {
    "shipped",
    "rejected",
    "cancelled",
    "withdrawn",
    "reset",
    "moved",
    "fulfilled_elsewhere",
    "closed",
}


@dataclass
class OrderRun:
    """One order and what its merchant did to it; `expected` is the final state those actions call for."""

    shop: ConnectedShop
    kind: str
    order_id: str = ""
    name: str = ""
    fo_id: str = ""
    expected: str = ""
    notes: list[str] = field(default_factory=list)
    watch_since: float = 0.0
    reset_at: float | None = None

    @property
    def settled_by_merchant(self) -> bool:
        return bool(self.expected)


@dataclass
class Result:
    orders: int
    counts: Counter
    lost: int
    doubled: int
    wrong: int
    elapsed_s: float
    problems: list[str]

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.wrong == 0

    def line(self) -> str:
        return (
            f"chaos: orders={self.orders} fulfilled={self.counts['fulfilled']} cancelled={self.counts['cancelled']} "
            f"rejected={self.counts['rejected']} lost={self.lost} doubled={self.doubled} wrong={self.wrong} "
            f"elapsed_s={self.elapsed_s:.0f}"
        )


# --- the merchants ---------------------------------------------------------------------------------------


def plan_kinds(count: int, rng: random.Random) -> list[str]:
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    return rng.choices(names, weights, k=count)


def _refused(run: OrderRun, what: str, exc: MerchantActionRefused) -> None:
    run.notes.append(f"{what} refused ({exc.status})")


class MerchantActor(threading.Thread):
    """One shop's merchant: places orders at a steady pace, then does to each what its kind says."""

    def __init__(self, shop: ConnectedShop, runs: list[OrderRun], interval_s: float, rng: random.Random):
        super().__init__(name=f"merchant-{shop.domain}", daemon=True)
        self.shop = shop
        self.runs = runs
        self.interval_s = interval_s
        self.rng = rng
        self.watching: list[OrderRun] = []
        self.placed = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            next_at = time.monotonic()
            queue = list(self.runs)
            while (queue or self.watching) and not self.stop.is_set():
                if queue and time.monotonic() >= next_at:
                    self.start_order(queue.pop(0))
                    self.placed += 1
                    next_at += self.interval_s
                self.watch()
                time.sleep(0.05 if queue else 0.3)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def start_order(self, run: OrderRun) -> None:
        sku = SOLD_OUT if run.kind == "reject" else self.rng.choice(SKUS)
        # Plain orders are sometimes large enough for two parcels (4 units each); the others ship in one, so
        # that a cancellation meets either nothing shipped or everything.
        large = run.kind == "plain" and self.rng.random() < 0.3
        quantity = self.rng.choice((5, 6, 8)) if large else 1 + self.rng.randrange(3)
        order = self.shop.place_order([{"sku": sku, "title": f"Chaos {sku}", "quantity": quantity}])
        run.order_id, run.name = order["id"], order["name"]
        (fo,) = order["fulfillment_orders"]
        run.fo_id = fo["id"]
        self.shop.merchant.request_fulfillment(run.fo_id, message=f"chaos {run.kind}")
        if run.kind in ("plain", "reject"):
            run.expected = "fulfilled" if run.kind == "plain" else "rejected"
        elif run.kind in ("withdraw", "resubmit", "move"):
            self.withdraw(run)
        else:
            run.watch_since = time.monotonic()
            self.watching.append(run)

    def withdraw(self, run: OrderRun) -> None:
        try:
            answer = self.shop.merchant.act(run.fo_id, "cancel")
        except MerchantActionRefused as exc:
            _refused(run, "withdraw", exc)  # we accepted first: the order goes on
            run.expected = "fulfilled"
            return
        replacement = next(fo for fo in answer["fulfillment_orders"] if fo["id"] != run.fo_id)
        if run.kind == "withdraw":
            run.expected = "cancelled"
        elif run.kind == "resubmit":
            self.shop.merchant.request_fulfillment(replacement["id"], message="chaos resubmitted")
            run.expected = "fulfilled"
        else:
            try:
                self.shop.merchant.act(replacement["id"], "move", location_id=self.shop.merchant_location_id)
            except MerchantActionRefused as exc:
                _refused(run, "move", exc)
            run.expected = "cancelled"

    def watch(self) -> None:
        """Cancel and reset act once we accepted the request; both race our own steps on purpose."""
        now = time.monotonic()
        for run in list(self.watching):
            if run.reset_at is not None:
                if now >= run.reset_at:
                    try:
                        self.shop.merchant.act(run.fo_id, "cancel")
                    except MerchantActionRefused as exc:
                        _refused(run, "reset", exc)  # we answered the cancellation first
                    run.expected = "cancelled"
                    self.watching.remove(run)
                continue
            fo = next(f for f in self.shop.merchant.order(run.order_id)["fulfillment_orders"] if f["id"] == run.fo_id)
            if fo["status"] in FINAL_STATUSES:
                run.notes.append(f"shipped before the merchant acted ({fo['status']}/{fo['request_status']})")
                run.expected = "fulfilled"
                self.watching.remove(run)
            elif fo["request_status"] == "ACCEPTED":
                try:
                    self.shop.merchant.request_cancellation(run.fo_id, message=f"chaos {run.kind}")
                except MerchantActionRefused as exc:
                    _refused(run, "cancellation request", exc)  # shipped in between
                    run.expected = "fulfilled"
                    self.watching.remove(run)
                    continue
                if run.kind == "cancel":
                    run.expected = "cancelled"
                    self.watching.remove(run)
                else:
                    run.reset_at = now + self.rng.uniform(0.0, 1.5)


# --- the verdict -----------------------------------------------------------------------------------------


def classify(order: dict, our_location: str) -> tuple[str, bool]:
    """The order's final state on the store's side, and whether anything was fulfilled twice."""
    ordered = {li["id"]: li["quantity"] for li in order["line_items"]}
    shipped: Counter = Counter()
    numbers: Counter = Counter()
    for fulfillment in order["fulfillments"]:
        if fulfillment["status"] in ("CANCELLED", "ERROR", "FAILURE"):
            continue
        for item in fulfillment["line_items"]:
            shipped[item["line_item_id"]] += item["quantity"]
        for tracking in fulfillment["tracking_info"]:
            if tracking["number"]:
                numbers[tracking["number"]] += 1
    doubled = any(shipped[i] > q for i, q in ordered.items()) or any(n > 1 for n in numbers.values())
    ours = [fo for fo in order["fulfillment_orders"] if fo["assigned_location_id"] == our_location]
    if any(fo["status"] not in FINAL_STATUSES and fo["request_status"] in PENDING_ON_US for fo in ours):
        return "lost", doubled
    total = sum(ordered.values())
    done = sum(min(shipped[i], q) for i, q in ordered.items())
    if total and done == total:
        return "fulfilled", doubled
    if done == 0:
        if any(fo["request_status"] == "REJECTED" for fo in ours):
            return "rejected", doubled
        return "cancelled", doubled
    return "partial", doubled


def our_unfinished_orders(system: System, shop: ConnectedShop) -> dict[str, str]:
    """Order id -> state, for our records that are not in a final state."""
    return {r.order_id: r.state for r in system.records(shop.shop_id) if r.state not in FINAL_RECORD_STATES}


def settle(system: System, shops: list[ConnectedShop], runs: list[OrderRun]) -> tuple[int, dict[str, tuple[str, bool]]]:
    """How many orders are final on both sides, and each order's classification."""
    found: dict[str, tuple[str, bool]] = {}
    for shop in shops:
        unfinished = our_unfinished_orders(system, shop)
        for order in shop.merchant.orders():
            category, doubled = classify(order, shop.location_id)
            if order["id"] in unfinished:
                category = "lost"
            found[order["id"]] = (category, doubled)
    done = sum(1 for r in runs if r.settled_by_merchant and found.get(r.order_id, ("lost",))[0] != "lost")
    return done, found


def verdict(runs: list[OrderRun], found: dict[str, tuple[str, bool]], elapsed_s: float) -> Result:
    counts: Counter = Counter()
    lost = doubled = wrong = 0
    problems = []
    for run in runs:
        category, twice = found.get(run.order_id, ("lost", False))
        counts[category] += 1
        doubled += twice
        if twice:
            problems.append(f"{run.shop.domain} {run.name} ({run.kind}) doubled; {run.notes}")
        if category == "lost" or not run.expected:
            lost += 1
            problems.append(f"{run.shop.domain} {run.name} ({run.kind}) lost; expected {run.expected!r}; {run.notes}")
        elif category != run.expected:
            wrong += 1
            problems.append(
                f"{run.shop.domain} {run.name} ({run.kind}) is {category}, expected {run.expected}; {run.notes}"
            )
    return Result(len(runs), counts, lost, doubled, wrong, elapsed_s, problems)


# --- the run ---------------------------------------------------------------------------------------------


@dataclass
class Chaos:
    """What goes wrong mid-run, at which share of settled orders."""

    kills: tuple[float, ...] = (0.2, 0.65)
    redis_restarts: tuple[float, ...] = (0.4,)

    def events(self) -> list[tuple[float, str]]:
        return sorted([(at, "kill") for at in self.kills] + [(at, "redis") for at in self.redis_restarts])


def run(
    orders: int,
    shops: int,
    *,
    rate: float = 2.0,
    chaos: Chaos | None = None,
    faults: dict | None = None,
    timeout_s: float = 1200,
    seed: int = 1,
    concurrency: int = 6,
    keep_logs: bool = False,
    database_url: str | None = None,
) -> Result:
    """Run the scenario and return the verdict; every process started is stopped before returning."""
    chaos = chaos or Chaos()
    faults = {**FAULTS, **(faults or {})}
    rng = random.Random(seed)
    outcome: list[Result] = []

    def keep() -> bool:
        return keep_logs or not (outcome and outcome[0].clean)

    with running_system(
        "chaos", keep_files=keep, workers=2, concurrency=concurrency, settings=SETTINGS, database_url=database_url
    ) as system:
        for sku in SKUS:
            system.set_stock(sku, 100_000)
        system.set_stock(SOLD_OUT, 0)
        connected = [
            system.connect_shop(f"chaos-{n + 1}-{rng.randrange(16**6):06x}.myshopify.com", throttle=STANDARD)
            for n in range(shops)
        ]
        for n, shop in enumerate(connected):
            shop.merchant.set_faults(**faults, seed=seed * 1000 + n)
        kinds = plan_kinds(orders, rng)
        runs = [OrderRun(connected[i % shops], kind) for i, kind in enumerate(kinds)]
        actors = [
            MerchantActor(shop, [r for r in runs if r.shop is shop], shops / rate, random.Random(rng.random()))
            for shop in connected
        ]
        say(f"chaos: {orders} orders over {shops} shops, faults {faults}, logs in {system.workdir / 'log'}")
        started = time.monotonic()
        for actor in actors:
            actor.start()
        events = chaos.events()
        kills = 0
        deadline = started + timeout_s
        found: dict[str, tuple[str, bool]] = {}
        while time.monotonic() < deadline:
            time.sleep(3)
            for actor in actors:
                if actor.error is not None:
                    raise RuntimeError(f"{actor.name} failed") from actor.error
            done, found = settle(system, connected, runs)
            placed = sum(a.placed for a in actors)
            say(f"chaos: t={time.monotonic() - started:.0f}s placed={placed} settled={done}/{orders}")
            while events and done >= events[0][0] * orders:
                _, what = events.pop(0)
                if what == "kill":
                    say(f"chaos: SIGKILL worker-{kills % 2 + 1}")
                    system.kill_worker(kills % 2)
                    kills += 1
                else:
                    say("chaos: restarting Redis (empty)")
                    system.restart_redis()
            if done == orders and not events and all(not a.is_alive() for a in actors):
                break
        elapsed = time.monotonic() - started
        for actor in actors:
            actor.stop.set()
        # Anything late (a duplicate step, a slow retry) has one more sweep interval to show itself.
        time.sleep(2 * float(SETTINGS["SWEEP_INTERVAL_S"]))
        _, found = settle(system, connected, runs)
        result = verdict(runs, found, elapsed)
        outcome.append(result)
        for problem in result.problems[:50]:
            say(f"chaos: {problem}")
    return result


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--shops", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2.0, help="orders placed per second, all shops together")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for every order to settle")
    parser.add_argument("--seed", type=int, help="replay the merchants' and the store's dice (default: a new seed)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so that `finally` stops every process we started
    if args.seed is None:
        args.seed = random.randrange(1, 10**6)
    say(f"chaos: seed {args.seed}")
    result = run(
        args.orders, args.shops, rate=args.rate, timeout_s=args.timeout, seed=args.seed, keep_logs=args.keep_logs
    )
    print(result.line(), flush=True)
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
