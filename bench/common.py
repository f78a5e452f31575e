"""Shared plumbing for the system benchmarks (`chaos.py`, `pipeline.py`) and the chaos test.

The system is `devstack.system`'s, started here with its own Redis server (never the machine's shared one) over a
fresh SQLite database in a temporary folder; shops are connected as an install would (service + webhooks).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/chaos.py` as well as `python -m bench.chaos`
    sys.path.insert(0, str(ROOT))

from devstack import system as devstack_system  # noqa: E402
from devstack.merchant import MerchantActionRefused  # noqa: E402
from devstack.system import ADDRESS, ConnectedShop, System, as_utc  # noqa: E402
from devstack.wait import WaitTimedOut, wait_for  # noqa: E402

BENCH_SETTINGS = {
    "SHOPIFY_API_KEY": "bench-api-key",
    "SHOPIFY_API_SECRET": "bench-api-secret",
    "SECRET_KEY": "bench-secret-key",
}
STANDARD = {"maximum_available": 2000, "restore_rate": 100}


def say(message: str) -> None:
    """Progress goes to stderr, so a bench's stdout is its result lines only."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def start_system(
    name: str,
    *,
    workers: int = 2,
    concurrency: int = 4,
    settings: dict[str, str] | None = None,
    web_workers: int = 2,
    database_url: str | None = None,
) -> System:
    """Redis of its own, the sandbox, web, `workers` Celery worker processes and beat over a fresh database (a
    SQLite file in a new work folder unless `database_url` names an empty one)."""
    return devstack_system.start_system(
        Path(tempfile.mkdtemp(prefix=f"{name}-")),
        {**BENCH_SETTINGS, **(settings or {})},
        database_url=database_url,
        workers=workers,
        concurrency=concurrency,
        web_workers=web_workers,
    )


@contextmanager
def running_system(name: str, keep_files: Callable[[], bool] = lambda: False, **options) -> Iterator[System]:
    """`start_system`, stopped on the way out whatever happens; files are kept when `keep_files()` says so."""
    system = start_system(name, **options)
    try:
        yield system
    except BaseException:
        say(f"{name}: logs kept in {system.workdir / 'log'}")
        system.stop(keep_files=True)
        raise
    keep = keep_files()
    if keep:
        say(f"{name}: logs kept in {system.workdir / 'log'}")
    system.stop(keep_files=keep)


def warm_up(system: System, sku: str, timeout_s: float = 120) -> None:
    """One order through the whole system on a shop of its own, so that what is measured next finds every
    process started and every connection made (a worker still booting would hold the first requests)."""
    shop = system.connect_shop("warm-up.myshopify.com", subscribe_webhooks=False)
    shop.set_stock(sku, 10)
    order = shop.place_order([{"sku": sku, "title": "Warm-up", "quantity": 1}])
    (fo,) = order["fulfillment_orders"]
    shop.merchant.request_fulfillment(fo["id"])
    wait_for(
        lambda: system.state_counts([shop.shop_id]).get("shipped", 0) >= 1, timeout_s, 0.3, "the warm-up order shipped"
    )


__all__ = [
    "ADDRESS",
    "STANDARD",
    "ConnectedShop",
    "MerchantActionRefused",
    "System",
    "WaitTimedOut",
    "as_utc",
    "percentile",
    "running_system",
    "say",
    "start_system",
    "wait_for",
    "warm_up",
]
