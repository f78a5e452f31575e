"""Latency: how soon one shop's requests are accepted and shipped at a steady pace, with no rate limit in the way.

    .venv/bin/python -m bench.latency [--rate 2] [--duration 60]

Real web, Celery workers (two processes), beat and a Redis of its own; the sandbox store with faults off and a
bucket too big to throttle. Production settings otherwise (sweeps every 30 s, 1 s to pick and 1 s to pack). The
orders are placed first; the merchant then requests one every 1/rate seconds for `--duration` seconds, each
timed from its request to our record of the store's acceptance and of its shipment.

    latency: p50_accept_s=x p99_accept_s=y p99_fulfilled_s=z
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/latency.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import System, percentile, running_system, say, wait_for, warm_up

SETTINGS = {
    "SWEEP_INTERVAL_S": "30",
    "PICK_DELAY_S": "1",
    "PACK_DELAY_S": "1",
    "DELIVERY_EVENT_DELAY_S": "86400",  # the carrier's traffic, not the pipeline's
    "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
}
SKU = "LAT-MUG"
UNTHROTTLED = {"maximum_available": 10_000_000, "restore_rate": 1_000_000}


def run(system: System, rate: float, duration_s: float, timeout_s: float) -> str:
    warm_up(system, SKU)
    shop = system.connect_shop("latency.myshopify.com", throttle=UNTHROTTLED)
    count = int(rate * duration_s)
    fo_ids = []
    for n in range(count):
        order = shop.place_order([{"sku": SKU, "title": "Latency mug", "quantity": 1 + n % 2}])
        fo_ids.extend(fo["id"] for fo in order["fulfillment_orders"][:1])
    say(f"latency: {count} orders placed; requesting {rate:g} a second for {duration_s:g}s")
    submitted: dict[str, datetime] = {}
    began = time.monotonic()
    for n, fo_id in enumerate(fo_ids):
        time.sleep(max(0.0, began + n / rate - time.monotonic()))
        submitted[fo_id] = datetime.now(UTC)
        shop.merchant.request_fulfillment(fo_id)

    def all_shipped() -> bool:
        return system.state_counts([shop.shop_id]).get("shipped", 0) >= len(fo_ids)

    wait_for(all_shipped, timeout_s, 0.5, f"every order shipped within {timeout_s:.0f}s")
    accepted = system.first_transition_times([shop.shop_id], "accepted")
    shipped = system.first_transition_times([shop.shop_id], "shipped")
    accept_s = [(accepted[fo] - at).total_seconds() for fo, at in submitted.items()]
    fulfilled_s = [(shipped[fo] - at).total_seconds() for fo, at in submitted.items()]
    return (
        f"latency: p50_accept_s={percentile(accept_s, 50):.2f} p99_accept_s={percentile(accept_s, 99):.2f} "
        f"p99_fulfilled_s={percentile(fulfilled_s, 99):.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of requests")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so that `finally` stops every process we started

    with running_system("latency", keep_files=lambda: args.keep_logs, settings=SETTINGS) as system:
        system.set_stock(SKU, 1_000_000)
        print(run(system, args.rate, args.duration, args.timeout), flush=True)
    return 0


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
