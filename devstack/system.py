"""The whole system on loopback, for the end-to-end tests and the benchmarks, and the one way to connect a shop.

`start_system` runs the sandbox store, gunicorn, Celery worker processes and beat (and a Redis server of its own
unless given one) over a migrated database; `System` reads results back from the store's side (the sandbox's
merchant API) and ours (the database) and `stop()` ends every process it started. `connect_shop` installs the
app on a sandbox shop with the scopes the real install asks for and sets the shop up as the install does; the
demo (`dev.py up`) uses it too.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import requests

from devstack.merchant import Merchant
from devstack.processes import Process, Stack, free_port
from devstack.wait import wait_for

ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address1": "1 Test Street",
    "city": "Oslo",
    "province": "",
    "country_code": "NO",
    "zip": "0150",
}


def connect_shop(ctx, merchant: Merchant, *, subscribe_webhooks: bool = True) -> int:
    """Install the app on the merchant's (existing) shop and set it up as the OAuth install does; returns our id.

    `subscribe_webhooks=False` registers only the fulfillment service: for tests that must see the callbacks and
    sweeps alone at work (and post the webhooks they need themselves).
    """
    from fulfillment.install import SCOPES, set_up
    from fulfillment.shops import register_fulfillment_service, save_token

    token = merchant.install_app(SCOPES)
    shop_id = save_token(ctx, merchant.shop, token, SCOPES)
    if subscribe_webhooks:
        set_up(ctx, shop_id)
    else:
        register_fulfillment_service(ctx, shop_id)
    return shop_id


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the app writes them in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class ConnectedShop:
    """A shop on the sandbox with our app installed and registered as its fulfillment service."""

    domain: str
    merchant: Merchant
    shop_id: int
    location_id: str  # our fulfillment service's location
    system: System

    @cached_property
    def merchant_location_id(self) -> str:
        """The merchant's own "Shop location"."""
        return next(loc["id"] for loc in self.merchant.state()["locations"] if loc["id"] != self.location_id)

    def state(self) -> dict:
        return self.merchant.state()

    def throttle_available(self) -> float:
        return float(self.state()["throttle"]["currently_available"])

    def set_stock(self, sku: str, on_hand: int) -> None:
        """Put `on_hand` units of `sku` on this shop's shelf (stock is kept per shop)."""
        self.system.stock_shop(self.shop_id, {sku: on_hand})

    def configure(self, **settings) -> None:
        """Change the shop's settings (what the dashboard's settings page saves)."""
        from fulfillment.models import Shop
        from workers.queue import SWEEP_SHOP_TASK

        ctx = self.system.context()
        with ctx.db.transaction() as session:
            shop = session.get(Shop, self.shop_id)
            shop.settings = {**(shop.settings or {}), **settings}
        self.system.celery().send_task(SWEEP_SHOP_TASK, args=(self.shop_id, "operator"))

    def retire(self) -> None:
        """Uninstall the app from the shop on our side, as a confirmed app/uninstalled webhook does: its sweeps
        stop, so a shop a test left throttled does not keep workers waiting on its budget for the tests after."""
        from fulfillment.webhooks import uninstall

        uninstall(self.system.context(), self.shop_id)

    def record(self, store_id: str):
        """Our record of a fulfillment order, with its line items, notes, packages and log loaded."""
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        from fulfillment.models import FulfillmentOrder, Package

        ctx = self.system.context()
        with ctx.db.transaction() as session:
            return session.scalar(
                select(FulfillmentOrder)
                .where(FulfillmentOrder.shop_id == self.shop_id, FulfillmentOrder.store_id == store_id)
                .options(
                    selectinload(FulfillmentOrder.line_items),
                    selectinload(FulfillmentOrder.merchant_requests),
                    selectinload(FulfillmentOrder.state_changes),
                    selectinload(FulfillmentOrder.packages).selectinload(Package.items),
                )
            )

    def available(self, sku: str) -> int:
        ctx = self.system.context()
        with ctx.db.transaction() as session:
            return ctx.warehouse(session).available(self.shop_id, [sku])[sku]

    def place_order(self, line_items: list[dict], **fields) -> dict:
        fields.setdefault("shipping_address", ADDRESS)
        fields.setdefault("paid", True)
        items = [{"location_id": self.location_id, **item} for item in line_items]
        return self.merchant.create_order(items, **fields)


@dataclass
class System:
    """The running system; `stop()` ends every process it started and removes its files unless kept."""

    stack: Stack
    env: dict[str, str]
    workdir: Path
    redis_port: int | None = None  # set when the system runs a Redis server of its own
    workers: list[Process] = field(default_factory=list)
    worker_concurrency: int = 2
    stock: dict[str, int] = field(default_factory=dict)  # what `set_stock` puts on every shop's shelf
    shop_ids: list[int] = field(default_factory=list)
    _context: object = None
    _session: requests.Session = field(default_factory=requests.Session)

    @property
    def app_url(self) -> str:
        return self.env["APP_URL"]

    @property
    def sandbox_url(self) -> str:
        return self.env["STORE_BASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def config(self):
        from fulfillment.config import Config

        return Config.from_env(self.env)

    def celery(self):
        from workers.celery_app import make_celery

        return make_celery(self.config())

    def context(self):
        """One Context (one engine) for the whole run, so callers do not pile up connections."""
        from fulfillment.context import Context

        if self._context is None:
            self._context = Context.from_config(self.config())
        return self._context

    def connect_shop(
        self, domain: str, *, subscribe_webhooks: bool = True, faults: dict | None = None, **shop_options
    ) -> ConnectedShop:
        """Create the shop on the store (a Standard plan unless told), install the app and set it up."""
        merchant = Merchant(self.sandbox_url, domain)  # its own HTTP session: one merchant per thread
        merchant.create_shop(**{"plan": "standard", **shop_options})
        shop_id = connect_shop(self.context(), merchant, subscribe_webhooks=subscribe_webhooks)
        self.shop_ids.append(shop_id)
        self.stock_shop(shop_id, self.stock)
        if faults:
            merchant.set_faults(**faults)
        return ConnectedShop(domain, merchant, shop_id, merchant.service_location_id(), self)

    def connect_shops(
        self, domains: list[str], *, threads: int = 8, progress: Callable[[int], None] | None = None, **options
    ) -> list[ConnectedShop]:
        """`connect_shop` for many shops at once, `threads` at a time (the store and the database answer several
        installs together; one by one, a thousand shops take minutes). In the order given; `progress(n)` after each."""
        done = 0
        lock = threading.Lock()

        def connect(domain: str) -> ConnectedShop:
            nonlocal done
            shop = self.connect_shop(domain, **options)
            with lock:
                done += 1
                if progress is not None:
                    progress(done)
            return shop

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(connect, domains))

    def set_stock(self, sku: str, on_hand: int) -> None:
        """Stock is per shop: every shop connected here, now or later, gets this much of the SKU on its shelf."""
        self.stock[sku] = on_hand
        for shop_id in self.shop_ids:
            self.stock_shop(shop_id, {sku: on_hand})

    def stock_shop(self, shop_id: int, levels: dict[str, int]) -> None:
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
        dead = self.workers[index]
        dead.kill()
        self.stack.processes.remove(dead)
        self.workers[index] = self.stack.worker(dead.name, concurrency=self.worker_concurrency)

    def restart_redis(self, down_s: float = 2.0) -> None:
        """Stop Redis and start a new, empty one on the same port: whatever it held in memory is lost."""
        if self.redis_port is None:
            raise RuntimeError("this system uses a Redis server it does not own")
        for process in [p for p in self.stack.processes if p.name == "redis"]:
            process.kill()
            self.stack.processes.remove(process)
        time.sleep(down_s)
        self.stack.redis(self.workdir / "redis", port=self.redis_port)

    def wait_workers_caught_up(self, timeout: float = 120, settle_s: float = 1.5) -> None:
        """Wait until nothing waits in the queue and no task has run for `settle_s` or longer: the state in
        which the README's "as long as the workers keep up" bounds apply. Two looks at the workers' running
        tasks, `settle_s` apart, with no task in both, so no clock of theirs is compared with ours."""
        import redis

        from fulfillment.metrics import queue_depth

        client = redis.Redis.from_url(self.redis_url)
        celery = self.celery()
        queue = celery.conf.task_default_queue  # the queue the metrics' depth reads, too
        inspect = celery.control.inspect(timeout=1.0)

        def running() -> set[str]:
            return {task["id"] for tasks in (inspect.active() or {}).values() for task in tasks}

        def caught_up() -> bool:
            if queue_depth(client, queue):
                return False
            before = running()
            time.sleep(settle_s)
            return not (before & running()) and not queue_depth(client, queue)

        try:
            wait_for(caught_up, timeout=timeout, interval=0.2, what="the workers to catch up")
        finally:
            client.close()

    def wait_store_idle(self, timeout: float = 10) -> None:
        self._session.post(f"{self.sandbox_url}/_sandbox/wait_idle", json={"timeout": timeout}, timeout=timeout + 5)

    def stop(self, keep_files: bool = False) -> None:
        self.stack.stop()
        if self._context is not None:
            self._context.db.dispose()
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_system(
    workdir: Path,
    settings: Mapping[str, str],
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    workers: int = 1,
    concurrency: int = 2,
    web_workers: int = 2,
) -> System:
    """Start the sandbox, web, `workers` Celery worker processes and beat, with `settings` over this process's
    environment. The database is a SQLite file in `workdir` unless `database_url` names one (brought to the
    newest schema either way); Redis is a server of the system's own unless `redis_url` names one. Logs go to
    `workdir/log/<process>.log`. Whatever fails to start, nothing started is left running."""
    from fulfillment.migrate import upgrade

    workdir.mkdir(parents=True, exist_ok=True)
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'fulfillment.db'}",
        "APP_URL": f"http://127.0.0.1:{app_port}",
        "STORE_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "SANDBOX_PUBLIC_URL": f"http://127.0.0.1:{sandbox_port}",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    stack = Stack(env, workdir / "log")
    system = System(stack, env, workdir, worker_concurrency=concurrency)
    try:
        if redis_url:
            env["REDIS_URL"] = redis_url
        else:
            system.redis_port = free_port()
            _, env["REDIS_URL"] = stack.redis(workdir / "redis", port=system.redis_port)
        upgrade(env["DATABASE_URL"])
        stack.sandbox(sandbox_port)
        stack.web(app_port, workers=web_workers)
        for index in range(workers):
            name = "worker" if workers == 1 else f"worker-{index + 1}"
            system.workers.append(stack.worker(name, concurrency=concurrency))
        stack.beat(workdir / "celerybeat-schedule")
    except BaseException:
        system.stop(keep_files=True)
        raise
    return system
