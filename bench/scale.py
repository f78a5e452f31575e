"""Scale: a thousand installed shops on several hosts, a flash sale on a few of them, and a worker host lost mid-run.

    .venv/bin/python -m bench.scale                         # 1,000 shops, 10 minutes
    .venv/bin/python -m bench.scale --shops 100 --duration 90

The system runs on hosts made of network namespaces (`devstack.hosts`, made and removed here): PostgreSQL and
Redis on one, the sandbox store on one, gunicorn on one, a Celery worker on each of `--worker-hosts` (beat on the
first of them only), all talking over their own addresses. `--shops` shops are installed; `--flooded` of them (a
flash sale) take `--flood-share` of the orders, `--active` others the rest, and every other shop is idle. Orders
are placed and requested at a steady aggregate `--rate` for `--duration` seconds. At `--cut-at` of the run the
last worker host is cut off (its link taken down, then its processes SIGKILLed) and `--down` seconds later it is
restored (link up, its processes started again). The tasks the lost worker held unacknowledged come back after the
broker's visibility timeout, set here to `--visibility-timeout` (the app's own is 300 s, for production's longest
task) so that the hand-over happens within the run.

Then every order is checked on the store's side, through the sandbox's merchant API. lost: a requested fulfillment
order that is not closed with its items shipped when `--settle-timeout` runs out; doubled: a fulfillment order
with more than one fulfillment (every order here fits one package); wrong: a fulfillment whose items differ from
what was ordered. It prints a progress line to stderr while it runs and one last line (here in two):

    scale: shops=1000 hosts=H orders=N orders_per_s=x p99_accept_s=y idle_points_per_shop_hour=z
    lost=0 doubled=0 wrong=0

orders_per_s is the orders shipped over the time from the first request to the last shipment; p99_accept_s runs
from the merchant's request to our record of the store's acceptance; idle_points_per_shop_hour is the store points
charged to the idle shops from half a minute before the cut to the end of the run, per idle shop, scaled to an
hour (what comes before, once after a deploy, is printed on a line of its own). Exit status
0 only when lost, doubled and wrong are all zero.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/scale.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_SETTINGS, STANDARD, ConnectedShop, percentile, say
from devstack.hosts import Layout, MultiHostSystem, start_hosts

SKUS = ("SCALE-MUG", "SCALE-TEE", "SCALE-CAP")
MAX_UNITS = 4  # the simulator's parcel: every order here fits one, so one fulfillment per fulfillment order
SETTINGS = {
    "SIMULATOR_MAX_UNITS_PER_PACKAGE": str(MAX_UNITS),
    "PICK_DELAY_S": "1",
    "PACK_DELAY_S": "1",
}


@dataclass
class Placed:
    """One order a merchant placed and requested, and what it asked for."""

    shop: ConnectedShop
    order_id: str
    fo_id: str
    items: dict[str, int]  # sku -> quantity
    requested_at: datetime


@dataclass
class Result:
    shops: int
    hosts: int
    orders: int
    orders_per_s: float
    p99_accept_s: float
    idle_points_per_shop_hour: float
    lost: int
    doubled: int
    wrong: int
    problems: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.wrong == 0

    def line(self) -> str:
        return (
            f"scale: shops={self.shops} hosts={self.hosts} orders={self.orders} orders_per_s={self.orders_per_s:.2f} "
            f"p99_accept_s={self.p99_accept_s:.2f} idle_points_per_shop_hour={self.idle_points_per_shop_hour:.1f} "
            f"lost={self.lost} doubled={self.doubled} wrong={self.wrong}"
        )


class Progress:
    """One line on stderr, rewritten in place: a bar over the run's phases and what the run is doing."""

    def __init__(self) -> None:
        # On a terminal the line is redrawn twice a second; into a file, a new line every 10 s.
        self.enabled = sys.stderr.isatty()
        self.every_s = 0.5 if self.enabled else 10.0
        self.last = 0.0

    def show(self, done: float, total: float, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        share = min(1.0, done / total) if total else 1.0
        bar = "#" * int(share * 30)
        line = f"[{bar:<30}] {share * 100:3.0f}% {text}"
        if self.enabled:
            print(f"\r{line[:150]:<150}", end="", file=sys.stderr, flush=True)
        else:
            say(line)

    def end(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _order_items(rng: random.Random) -> dict[str, int]:
    skus = rng.sample(SKUS, rng.choice((1, 1, 2)))
    left = MAX_UNITS
    items = {}
    for n, sku in enumerate(skus):
        quantity = rng.randint(1, left - (len(skus) - n - 1))
        items[sku] = quantity
        left -= quantity
    return items


def _cost(shop: ConnectedShop) -> float:
    return float(shop.merchant.state()["cost"]["cost_charged"])


def _costs(shops: list[ConnectedShop], threads: int = 8) -> list[float]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(_cost, shops))


def check(shops: list[ConnectedShop], placed: list[Placed]) -> tuple[int, int, int, list[str]]:
    """lost, doubled, wrong, and what was wrong, from the store's side."""
    by_order = {}
    for shop in shops:
        for order in shop.merchant.orders():
            by_order[order["id"]] = order
    lost = doubled = wrong = 0
    problems: list[str] = []
    for run in placed:
        order = by_order.get(run.order_id)
        fo = next((f for f in (order or {}).get("fulfillment_orders", []) if f["id"] == run.fo_id), None)
        made = [
            f
            for f in (order or {}).get("fulfillments", [])
            if f["status"] not in ("CANCELLED", "ERROR", "FAILURE") and run.fo_id in f["fulfillment_order_ids"]
        ]
        if len(made) > 1:
            doubled += 1
            problems.append(f"{run.shop.domain} {run.order_id}: {len(made)} fulfillments")
        if fo is None or fo["status"] != "CLOSED" or not made:
            lost += 1
            status = (fo or {}).get("status"), (fo or {}).get("request_status")
            problems.append(f"{run.shop.domain} {run.order_id}: not shipped {status}")
            continue
        shipped: Counter = Counter()
        for fulfillment in made:
            for item in fulfillment["line_items"]:
                shipped[item["sku"]] += item["quantity"]
        if dict(shipped) != run.items:
            wrong += 1
            problems.append(f"{run.shop.domain} {run.order_id}: shipped {dict(shipped)}, ordered {run.items}")
    return lost, doubled, wrong, problems


def run(
    *,
    shops: int = 1000,
    flooded: int = 5,
    active: int = 20,
    flood_share: float = 0.7,
    rate: float = 1.0,
    duration_s: float = 600,
    worker_hosts: int = 2,
    concurrency: int = 3,
    cut_at: float = 0.3,
    down_s: float | None = None,
    visibility_timeout_s: float = 60,
    settle_timeout_s: float = 600,
    layout: Layout | None = None,
    seed: int = 1,
    keep_logs: bool = False,
    settings: dict[str, str] | None = None,
) -> Result:
    """Run the scenario; every process, namespace and file it made is gone when it returns (logs kept on failure)."""
    rng = random.Random(seed)
    layout = layout or Layout(workers=tuple(f"worker-{n + 1}" for n in range(worker_hosts)))
    lost_host = layout.workers[-1]
    if lost_host == layout.beat:
        raise ValueError("the host lost must not be beat's: give the layout two worker hosts or more")
    down_s = duration_s * 0.25 if down_s is None else down_s
    progress = Progress()
    settings = {
        **BENCH_SETTINGS,
        **SETTINGS,
        "BROKER_VISIBILITY_TIMEOUT_S": str(visibility_timeout_s),
        **(settings or {}),
    }
    workdir = Path(tempfile.mkdtemp(prefix="scale-"))
    say(f"scale: {shops} shops on {len(layout.hosts)} hosts {layout.hosts}, logs in {workdir / 'log'}")
    system: MultiHostSystem = start_hosts(
        workdir, settings, layout=layout, concurrency=concurrency, start_workers=False
    )
    result: Result | None = None
    try:
        tag = f"{rng.randrange(16**4):04x}"
        domains = [f"scale-{tag}-{n + 1}.myshopify.com" for n in range(shops)]
        started = time.monotonic()
        connected = system.connect_shops(
            domains,
            subscribe_webhooks=False,  # the store sends webhooks to https:// only; callbacks and sweeps do the work
            throttle=STANDARD,
            progress=lambda n: progress.show(n, shops, f"connecting shops {n}/{shops}"),
        )
        progress.show(shops, shops, f"connected {shops} shops in {time.monotonic() - started:.0f}s", force=True)
        progress.end()
        system.start_workers()  # beat's first sweep takes in every shop at once, as after a deploy
        busy = connected[: flooded + active]
        for shop in busy:  # enough on every shelf that nothing is rejected for stock
            system.stock_shop(shop.shop_id, dict.fromkeys(SKUS, 10_000_000))
        flood, steady, idle = connected[:flooded], connected[flooded : flooded + active], connected[flooded + active :]
        idle_before = _costs(idle)
        placed: list[Placed] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def place(shop: ConnectedShop, items: dict[str, int]) -> None:
            try:
                order = shop.place_order([{"sku": s, "title": f"Scale {s}", "quantity": q} for s, q in items.items()])
                (fo,) = order["fulfillment_orders"]
                at = _now()
                shop.merchant.request_fulfillment(fo["id"])
                with lock:
                    placed.append(Placed(shop, order["id"], fo["id"], items, at))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        events = [(cut_at * duration_s, "cut"), (cut_at * duration_s + down_s, "restore")]
        say(f"scale: {rate}/s for {duration_s:.0f}s; {lost_host} cut at {events[0][0]:.0f}s for {down_s:.0f}s")
        begin = time.monotonic()
        # The idle shops' cost is taken from a moment before the cut on: what comes before it is once after a
        # deploy (beat's first sweep of every shop, the installs' first inventory pushes), not by the hour.
        sample: dict[str, object] = {}

        def sample_idle() -> None:
            sample["costs"] = _costs(idle)
            sample["at"] = time.monotonic()

        sampler = threading.Timer(max(0.0, cut_at * duration_s - 30), sample_idle)
        sampler.daemon = True
        sampler.start()
        total = int(rate * duration_s)
        with ThreadPoolExecutor(max_workers=16) as pool:
            for n in range(total):
                due = begin + n / rate
                while True:
                    now = time.monotonic()
                    while events and now - begin >= events[0][0]:
                        _, what = events.pop(0)
                        if what == "cut":
                            system.cut_host(lost_host)
                        else:
                            system.restore_host(lost_host)
                        progress.end()
                        say(f"scale: t={now - begin:.0f}s {what} {lost_host}")
                    if now >= due:
                        break
                    progress.show(now - begin, duration_s, f"t={now - begin:.0f}s placed={len(placed)}/{total}")
                    time.sleep(min(0.05, due - now))
                if errors:
                    raise RuntimeError("a merchant's request failed") from errors[0]
                pool.submit(
                    place,
                    flood[n % len(flood)] if rng.random() < flood_share else rng.choice(steady),
                    _order_items(rng),
                )
        while events:  # a run shorter than the planned outage: restore before settling
            _, what = events.pop(0)
            (system.cut_host if what == "cut" else system.restore_host)(lost_host)
        if errors:
            raise RuntimeError("a merchant's request failed") from errors[0]
        progress.end()
        shop_ids = [s.shop_id for s in busy]
        deadline = time.monotonic() + settle_timeout_s
        while True:
            shipped = system.first_transition_times(shop_ids, "shipped")
            done = sum(1 for p in placed if p.fo_id in shipped)
            progress.show(done, len(placed), f"settling: shipped {done}/{len(placed)}")
            if done >= len(placed) or time.monotonic() > deadline:
                break
            time.sleep(2)
        progress.end()
        # Anything late (a task handed out again, a duplicate step) has a little longer to show itself.
        time.sleep(min(10, visibility_timeout_s))
        lost, doubled, wrong, problems = check(busy, placed)
        shipped = system.first_transition_times(shop_ids, "shipped")
        last = max((shipped[p.fo_id] for p in placed if p.fo_id in shipped), default=None)
        sampler.join()
        idle_after = _costs(idle)
        idle_at, idle_mid = float(sample.get("at", begin)), sample.get("costs", idle_before)
        idle_hours = (time.monotonic() - idle_at) / 3600
        first = min((p.requested_at for p in placed), default=_now())
        span = ((last or _now()) - first).total_seconds()
        accepted = system.first_transition_times(shop_ids, "accepted")
        accept_s = [(accepted[p.fo_id] - p.requested_at).total_seconds() for p in placed if p.fo_id in accepted]
        once = sum(mid - before for before, mid in zip(idle_before, idle_mid, strict=True))
        spent = sum(after - mid for mid, after in zip(idle_mid, idle_after, strict=True))
        if idle:
            say(
                f"scale: idle shops: {once / len(idle):.1f} points each in the first {idle_at - begin:.0f}s "
                f"(beat's first sweep of every shop, the installs' pushes), then {spent / len(idle):.1f} each in "
                f"{idle_hours * 3600:.0f}s"
            )
        result = Result(
            shops=shops,
            hosts=system.host_count,
            orders=len(placed),
            orders_per_s=(len(placed) - lost) / span if span > 0 else 0.0,
            p99_accept_s=percentile(accept_s, 99),
            idle_points_per_shop_hour=spent / len(idle) / idle_hours if idle and idle_hours else 0.0,
            lost=lost,
            doubled=doubled,
            wrong=wrong,
            problems=problems,
            counts=Counter(p.shop.domain for p in placed),
        )
        cut, restored = cut_at * duration_s, cut_at * duration_s + down_s
        for phase, low, high in (("before the cut", 0, cut), ("host lost", cut, restored), ("after", restored, 1e9)):
            phased = [
                (accepted[p.fo_id] - p.requested_at).total_seconds()
                for p in placed
                if p.fo_id in accepted and low <= (p.requested_at - first).total_seconds() < high
            ]
            say(
                f"scale: {phase}: {len(phased)} orders, accept p50={percentile(phased, 50):.2f}s "
                f"p99={percentile(phased, 99):.2f}s"
            )
        say(
            f"scale: accept p50={percentile(accept_s, 50):.2f}s p90={percentile(accept_s, 90):.2f}s "
            f"p99={percentile(accept_s, 99):.2f}s max={max(accept_s, default=0):.2f}s; last shipped "
            f"{span:.0f}s after the first request"
        )
        for problem in problems[:30]:
            say(f"scale: {problem}")
    finally:
        keep = keep_logs or result is None or not result.clean
        if keep:
            say(f"scale: logs kept in {workdir / 'log'}")
        system.stop(keep_files=keep)
    return result


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shops", type=int, default=1000, help="shops installed, most of them idle")
    parser.add_argument("--flooded", type=int, default=5, help="shops in a flash sale")
    parser.add_argument("--active", type=int, default=20, help="shops with ordinary orders")
    parser.add_argument("--flood-share", type=float, default=0.7, help="share of the orders the flooded shops take")
    parser.add_argument("--rate", type=float, default=1.0, help="orders placed and requested per second, all shops")
    parser.add_argument("--duration", type=float, default=600, help="seconds of orders")
    parser.add_argument("--worker-hosts", type=int, default=2, help="hosts with a Celery worker (beat on the first)")
    parser.add_argument("--concurrency", type=int, default=3, help="Celery worker processes per worker host")
    parser.add_argument("--cut-at", type=float, default=0.3, help="when the last worker host is lost (share of run)")
    parser.add_argument("--down", type=float, help="seconds the host stays lost (default: a quarter of the run)")
    parser.add_argument("--visibility-timeout", type=float, default=60, help="broker visibility timeout, seconds")
    parser.add_argument("--settle-timeout", type=float, default=600, help="seconds to wait for the last orders")
    parser.add_argument(
        "--sweep-interval", type=float, help="SWEEP_INTERVAL_S, beat's sweep of every shop (default: the app's)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so that `finally` removes every process and namespace made
    result = run(
        shops=args.shops,
        flooded=args.flooded,
        active=args.active,
        flood_share=args.flood_share,
        rate=args.rate,
        duration_s=args.duration,
        worker_hosts=args.worker_hosts,
        concurrency=args.concurrency,
        cut_at=args.cut_at,
        down_s=args.down,
        visibility_timeout_s=args.visibility_timeout,
        settle_timeout_s=args.settle_timeout,
        seed=args.seed,
        keep_logs=args.keep_logs,
        settings={"SWEEP_INTERVAL_S": str(args.sweep_interval)} if args.sweep_interval else None,
    )
    print(result.line(), flush=True)
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
