"""Work per order: the worker's CPU, SQL statements and transactions for each order it takes from request to shipped.

    .venv/bin/python bench/work.py [--orders 100]

Real web, one Celery worker process (concurrency 2), beat and a Redis of its own, the sandbox store with faults off
and a throttle too large to wait on, so that nothing but the work is measured. `bench/usage/sitecustomize.py`,
on the worker's PYTHONPATH only here, counts with SQLAlchemy's engine events and Celery's task signals without
changing the app, so the same run on an older checkout gives the figures to compare with. The carrier's delivery
events are put past the end of the run (they are the carrier's work, not the order's).

    work: orders=N worker_cpu_ms_per_order=x task_cpu_ms_per_order=y statements_per_order=s
          transactions_per_order=t tasks_per_order=k

worker_cpu_ms_per_order is the CPU the worker's processes used (psutil, children included, idle polling too) over
N; task_cpu_ms_per_order the CPU spent inside tasks (process_time around each task, summed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/work.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.common import running_system, say, wait_for

USAGE = Path(__file__).resolve().parent / "usage"
SKU = "WORK-MUG"
ROOMY = {"maximum_available": 1_000_000, "restore_rate": 100_000}


def _worker_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _usage(folder: Path) -> dict:
    total = {"statements": 0, "transactions": 0, "task_cpu_s": 0.0, "tasks": {}}
    for path in folder.glob("*.json"):
        one = json.loads(path.read_text())
        for key in ("statements", "transactions", "task_cpu_s"):
            total[key] += one[key]
        for name, count in one["tasks"].items():
            total["tasks"][name] = total["tasks"].get(name, 0) + count
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--profile", action="store_true", help="print where the time inside tasks goes (cProfile)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="work-usage-"))
    settings = {
        "SWEEP_INTERVAL_S": "30",
        "PICK_DELAY_S": "0.2",
        "PACK_DELAY_S": "0.2",
        "DELIVERY_EVENT_DELAY_S": "86400",
        "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
        "WORK_USAGE_DIR": str(folder),
        "WORK_PROFILE": "1" if args.profile else "",
        "PYTHONPATH": os.pathsep.join([str(USAGE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    with running_system("work", settings=settings, workers=1, concurrency=2) as system:
        system.set_stock(SKU, 1_000_000)
        shop = system.connect_shop("work-bench.myshopify.com", throttle=ROOMY)
        fo_ids = []
        for n in range(args.orders):
            order = shop.place_order([{"sku": SKU, "title": "Work mug", "quantity": 1 + n % 3}])
            fo_ids.extend(fo["id"] for fo in order["fulfillment_orders"])
        time.sleep(2)  # the setup's own tasks (first sweeps) settle
        pids = [w.popen.pid for w in system.workers]
        before_cpu, before = _worker_cpu_s(pids), _usage(folder)
        for fo_id in fo_ids:
            shop.merchant.request_fulfillment(fo_id)
        wait_for(
            lambda: system.state_counts([shop.shop_id]).get("shipped", 0) >= len(fo_ids),
            args.timeout,
            0.5,
            "every order shipped",
        )
        time.sleep(1)  # the last tasks write their figures
        cpu, after = _worker_cpu_s(pids) - before_cpu, _usage(folder)
    n = len(fo_ids)
    tasks = {k: v - before["tasks"].get(k, 0) for k, v in after["tasks"].items()}
    say("work: tasks " + " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in sorted(tasks.items())))
    print(
        f"work: orders={n} worker_cpu_ms_per_order={cpu * 1000 / n:.1f} "
        f"task_cpu_ms_per_order={(after['task_cpu_s'] - before['task_cpu_s']) * 1000 / n:.1f} "
        f"statements_per_order={(after['statements'] - before['statements']) / n:.1f} "
        f"transactions_per_order={(after['transactions'] - before['transactions']) / n:.1f} "
        f"tasks_per_order={sum(tasks.values()) / n:.1f}",
        flush=True,
    )
    if args.profile:
        import pstats

        stats = pstats.Stats(*map(str, folder.glob("*.prof")), stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
