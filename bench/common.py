"""Shared plumbing for the system benchmarks (`chaos.py`, `pipeline.py`) and the chaos test.

Starts the whole system on loopback with `devstack.processes.Stack`: its own Redis server (never the machine's
shared one), the sandbox store, gunicorn, Celery worker processes and beat, over a fresh SQLite database in a
temporary folder. Connects shops as an install would (service + webhooks), and reads results back from the
store's side (the sandbox's merchant API) and ours (the database). `System.stop()` ends every process it started.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/chaos.py` as well as `python -m bench.chaos`
    sys.path.insert(0, str(ROOT))

from devstack.merchant import Merchant, MerchantActionRefused  # noqa: E402
from devstack.processes import Process, Stack, free_port  # noqa: E402

API_SECRET = "bench-api-secret"
STANDARD = {"maximum_available": 2000, "restore_rate": 100}
ADDRESS = {
    "first_name": "Bench",
    "last_name": "Customer",
    "address1": "1 Harbour Street",
    "city": "Oslo",
    "province": "",
    "country_code": "NO",
    "zip": "0150",
}


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


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the app writes them in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Shop:
    """A shop on the sandbox with our app installed and registered as its fulfillment service."""

    domain: str
    merchant: Merchant
    shop_id: int
    location_id: str  # our fulfillment service's location
    merchant_location_id: str  # the merchant's own "Shop location"

    def place_order(self, line_items: list[dict], **fields) -> dict:
        fields.setdefault("shipping_address", ADDRESS)
        fields.setdefault("paid", True)
        return self.merchant.create_order([{"location_id": self.location_id, **i} for i in line_items], **fields)

    def state(self) -> dict:
        return self.merchant.state()

    def cost_charged(self) -> float:
        return float(self.state()["cost"]["cost_charged"])

    def throttle_available(self) -> float:
        return float(self.state()["throttle"]["currently_available"])


@dataclass
class System:
    """The running system; `stop()` ends every process it started and removes its files unless kept."""

    stack: Stack
    env: dict[str, str]
    workdir: Path
    redis_port: int
    sandbox_url: str
    app_url: str
    workers: list[Process] = field(default_factory=list)
    worker_concurrency: int = 4
    stock: dict[str, int] = field(default_factory=dict)  # what set_stock gives every shop's shelf
    shop_ids: list[int] = field(default_factory=list)
    _context: object = None
    _session: requests.Session = field(default_factory=requests.Session)

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def context(self):
        from fulfillment.config import Config
        from fulfillment.context import Context

        if self._context is None:
            self._context = Context.from_config(Config.from_env(self.env))
        return self._context

    def connect_shop(self, domain: str, *, throttle: dict | None = None, faults: dict | None = None) -> Shop:
        """Create the shop on the store, install the app and set it up (service and webhooks) as OAuth would."""
        from fulfillment.install import SCOPES, set_up
        from fulfillment.shops import save_token

        merchant = Merchant(self.sandbox_url, domain)  # its own HTTP session: one merchant per thread
        merchant.create_shop(plan="standard", throttle=throttle or STANDARD)
        token = merchant.install_app(SCOPES)
        shop_id = save_token(self.context(), domain, token, SCOPES)
        set_up(self.context(), shop_id)
        locations = merchant.state()["locations"]
        ours = merchant.service_location_id()
        theirs = next(loc["id"] for loc in locations if loc["id"] != ours)
        self.shop_ids.append(shop_id)
        self._stock_shop(shop_id, self.stock)
        if faults:
            merchant.set_faults(**faults)
        return Shop(domain, merchant, shop_id, ours, theirs)

    def set_stock(self, sku: str, on_hand: int) -> None:
        """Stock is per shop: every shop connected, now or later, gets this much of the SKU on its shelf."""
        self.stock[sku] = on_hand
        for shop_id in self.shop_ids:
            self._stock_shop(shop_id, {sku: on_hand})

    def _stock_shop(self, shop_id: int, levels: dict[str, int]) -> None:
        ctx = self.context()
        with ctx.db.transaction() as session:
            for sku, on_hand in levels.items():
                ctx.warehouse(session).set_stock(shop_id, sku, on_hand)

    def records(self, shop_id: int) -> list:
        """Our records of a shop's fulfillment orders, with their logs."""
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        from fulfillment.models import FulfillmentOrder

        ctx = self.context()
        with ctx.db.transaction() as session:
            return list(
                session.scalars(
                    select(FulfillmentOrder)
                    .where(FulfillmentOrder.shop_id == shop_id)
                    .options(selectinload(FulfillmentOrder.state_changes))
                ).all()
            )

    def state_counts(self, shop_ids: list[int] | None = None) -> dict[str, int]:
        from sqlalchemy import func, select

        from fulfillment.models import FulfillmentOrder

        ctx = self.context()
        with ctx.db.transaction() as session:
            query = select(FulfillmentOrder.state, func.count()).group_by(FulfillmentOrder.state)
            if shop_ids is not None:
                query = query.where(FulfillmentOrder.shop_id.in_(shop_ids))
            return {state: count for state, count in session.execute(query).all()}

    def first_transition_times(self, shop_ids: list[int], to_state: str) -> dict[str, datetime]:
        """Store id of each fulfillment order -> when our record first reached `to_state`."""
        from sqlalchemy import func, select

        from fulfillment.models import FulfillmentOrder, StateChange

        ctx = self.context()
        with ctx.db.transaction() as session:
            rows = session.execute(
                select(FulfillmentOrder.store_id, func.min(StateChange.at))
                .join(StateChange, StateChange.fulfillment_order_id == FulfillmentOrder.id)
                .where(FulfillmentOrder.shop_id.in_(shop_ids), StateChange.to_state == to_state)
                .group_by(FulfillmentOrder.store_id)
            ).all()
        return {store_id: as_utc(at) for store_id, at in rows}

    # --- chaos ------------------------------------------------------------------------------------------

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker process (its whole process group, as a crash would) and start a new one."""
        name = f"worker-{index + 1}"
        self.workers[index].kill()
        self.workers[index] = self.stack.worker(name, concurrency=self.worker_concurrency)

    def restart_redis(self, down_s: float = 2.0) -> None:
        """Stop Redis and start a new, empty one on the same port: whatever it held in memory is lost."""
        for process in self.stack.processes:
            if process.name == "redis" and process.alive:
                process.kill()
        time.sleep(down_s)
        self.stack.redis(self.workdir / "redis", port=self.redis_port)

    def wait_store_idle(self, timeout: float = 10) -> None:
        self._session.post(f"{self.sandbox_url}/_sandbox/wait_idle", json={"timeout": timeout}, timeout=timeout + 5)

    def stop(self, keep_files: bool = False) -> None:
        self.stack.stop()
        if self._context is not None:
            self._context.db.dispose()
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_system(
    name: str,
    *,
    workers: int = 2,
    concurrency: int = 4,
    settings: dict[str, str] | None = None,
    web_workers: int = 2,
    database_url: str | None = None,
) -> System:
    """Start Redis, the sandbox, web, `workers` Celery worker processes and beat over a fresh database (a SQLite
    file in the work folder unless `database_url` names an empty one)."""
    from fulfillment.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    app_port, sandbox_port, redis_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'fulfillment.db'}",
        "APP_URL": f"http://127.0.0.1:{app_port}",
        "STORE_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "SANDBOX_PUBLIC_URL": f"http://127.0.0.1:{sandbox_port}",
        "SHOPIFY_API_KEY": "bench-api-key",
        "SHOPIFY_API_SECRET": API_SECRET,
        "SECRET_KEY": "bench-secret-key",
        "PYTHONUNBUFFERED": "1",
        **(settings or {}),
    }
    stack = Stack(env, workdir / "log")
    system = System(
        stack, env, workdir, redis_port, env["STORE_BASE_URL"], env["APP_URL"], worker_concurrency=concurrency
    )
    try:
        # Configured as production would be: nothing persisted, so a restart loses what it held.
        _, env["REDIS_URL"] = stack.redis(workdir / "redis", port=redis_port)
        upgrade(env["DATABASE_URL"])
        stack.sandbox(sandbox_port)
        stack.web(app_port, workers=web_workers)
        for index in range(workers):
            system.workers.append(stack.worker(f"worker-{index + 1}", concurrency=concurrency))
        stack.beat(workdir / "celerybeat-schedule")
    except BaseException:
        system.stop(keep_files=True)
        raise
    return system


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


def wait_until(check: Callable[[], object], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


__all__ = [
    "ADDRESS",
    "STANDARD",
    "MerchantActionRefused",
    "Shop",
    "System",
    "as_utc",
    "percentile",
    "running_system",
    "say",
    "start_system",
    "wait_until",
]
