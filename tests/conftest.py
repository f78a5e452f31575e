"""Fixtures for the whole suite. Those that start processes live here and nowhere else.

Redis: the server in REDIS_URL (an embedded one when unset), on its own DB number, flushed only there.
Database: a PostgreSQL database created and dropped by the suite when DATABASE_URL names a PostgreSQL server,
otherwise SQLite files in a temporary folder.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy.engine import make_url

from devstack.merchant import Merchant
from devstack.processes import Stack, free_port

TEST_REDIS_DB = 11
API_SECRET = "test-api-secret"


def wait_for(check: Callable[[], object], timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    """Poll until `check()` returns something truthy; return it. Waiting is not timing: no duration is asserted."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    stack = None
    base = os.environ.get("REDIS_URL")
    if not base:
        stack = Stack(dict(os.environ), tmp_path_factory.mktemp("redis-log"))
        _, base = stack.redis(tmp_path_factory.mktemp("redis"))
    url = urlunsplit(urlsplit(base)._replace(path=f"/{TEST_REDIS_DB}"))
    client = redis.Redis.from_url(url)
    client.flushdb()  # our own DB number only
    yield url
    client.flushdb()
    if stack:
        stack.stop()


def _postgres_admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_server_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


@pytest.fixture(scope="session")
def make_database(database_server_url, tmp_path_factory) -> Iterator[Callable[[], str]]:
    """Makes fresh, migrated databases; PostgreSQL ones are dropped at the end of the session."""
    import psycopg

    from fulfillment.migrate import upgrade

    created: list[str] = []

    def make() -> str:
        if database_server_url:
            name = f"fulfillment_test_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(_postgres_admin_url(database_server_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            url = make_url(database_server_url).set(drivername="postgresql+psycopg", database=name)
            url = url.render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fulfillment.db'}"
        upgrade(url)
        return url

    yield make
    if database_server_url:
        with psycopg.connect(_postgres_admin_url(database_server_url), autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class System:
    """The whole system running for end-to-end tests: sandbox store, web, a Celery worker, real Redis."""

    stack: Stack
    env: dict[str, str]
    app_url: str
    sandbox_url: str
    _context: object = None

    def config(self):
        from fulfillment.config import Config

        return Config.from_env(self.env)

    def celery(self):
        from workers.celery_app import make_celery

        return make_celery(self.config())

    def context(self):
        """One Context (one engine) for the whole session, so tests do not pile up connections."""
        from fulfillment.context import Context

        if self._context is None:
            self._context = Context.from_config(self.config())
        return self._context


@pytest.fixture(scope="session")
def system(redis_url, make_database, tmp_path_factory) -> Iterator[System]:
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": make_database(),
        "REDIS_URL": redis_url,
        "APP_URL": f"http://127.0.0.1:{app_port}",
        "STORE_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "SANDBOX_PUBLIC_URL": f"http://127.0.0.1:{sandbox_port}",
        "SHOPIFY_API_KEY": "test-api-key",
        "SHOPIFY_API_SECRET": API_SECRET,
        "SECRET_KEY": "test-secret-key",
        "PICK_DELAY_S": "0.2",
        "PACK_DELAY_S": "0.2",
        "SWEEP_INTERVAL_S": "5",
        "DELIVERY_EVENT_DELAY_S": "0.3",
        "OPERATOR_API_TOKEN": "test-operator-token",
        "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
        "PYTHONUNBUFFERED": "1",
    }
    logs = tmp_path_factory.mktemp("system-logs")
    stack = Stack(env, logs)
    try:
        stack.sandbox(sandbox_port)
        stack.web(app_port)
        stack.worker(concurrency=2)
        stack.beat(logs / "celerybeat-schedule")
        yield System(stack, env, env["APP_URL"], env["STORE_BASE_URL"])
    finally:
        stack.stop()
        print(f"\nsystem logs in {logs}")


_shop_numbers = itertools.count(1)


@dataclass
class ConnectedShop:
    domain: str
    merchant: Merchant
    shop_id: int
    location_id: str
    system: System

    def set_stock(self, sku: str, on_hand: int) -> None:
        ctx = self.system.context()
        with ctx.db.transaction() as session:
            ctx.warehouse(session).set_stock(self.shop_id, sku, on_hand)

    def configure(self, **settings) -> None:
        """Change the shop's settings (what the dashboard's settings page saves)."""
        from fulfillment.models import Shop

        ctx = self.system.context()
        with ctx.db.transaction() as session:
            shop = session.get(Shop, self.shop_id)
            shop.settings = {**(shop.settings or {}), **settings}
        self.system.celery().send_task("workers.tasks.sweep_shop", args=(self.shop_id, "operator"))

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
        fields.setdefault(
            "shipping_address",
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address1": "1 Test Street",
                "city": "Oslo",
                "province": "",
                "country_code": "NO",
                "zip": "0150",
            },
        )
        fields.setdefault("paid", True)
        items = [{"location_id": self.location_id, **item} for item in line_items]
        return self.merchant.create_order(items, **fields)


@pytest.fixture
def connected_shop(system, request) -> ConnectedShop:
    """A fresh shop on the sandbox with our app installed and registered as its fulfillment service."""
    from fulfillment.shops import connect_shop

    domain = f"shop-{next(_shop_numbers)}-{uuid.uuid4().hex[:6]}.myshopify.com"
    merchant = Merchant(system.sandbox_url, domain)
    merchant.create_shop(plan="standard", **getattr(request, "param", {}))
    token = merchant.install_app()
    shop_id = connect_shop(system.context(), domain, token)
    return ConnectedShop(domain, merchant, shop_id, merchant.service_location_id(), system)


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parts[-2] == "e2e":
            item.add_marker(pytest.mark.e2e)
