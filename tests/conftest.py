"""Fixtures for the whole suite. Those that start processes live here and nowhere else.

Redis: the server in REDIS_URL (an embedded one when unset), on its own DB number, flushed only there.
Database: a PostgreSQL database created and dropped by the suite when DATABASE_URL names a PostgreSQL server,
otherwise SQLite files in a temporary folder.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy.engine import make_url

from devstack.processes import Stack
from devstack.system import ConnectedShop, System, start_system

# DB numbers the suite may take on a shared Redis server. A run claims the first one no other live run holds, so
# two suites on one machine (or one server) never flush or take each other's tasks.
TEST_REDIS_DBS = (11, 12, 10, 9, 8)  # 13 is the unit tests' own (unique keys), 14 the benches'
CLAIM_KEY = "fulfillment-test-suite:claim"
API_SECRET = "test-api-secret"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    stack = None
    base = os.environ.get("REDIS_URL")
    if not base:
        stack = Stack(dict(os.environ), tmp_path_factory.mktemp("redis-log"))
        _, base = stack.redis(tmp_path_factory.mktemp("redis"))
    url, client = _claim_redis_db(base)
    yield url
    client.flushdb()  # our own DB number only; the claim goes with it
    if stack:
        stack.stop()


def _claim_redis_db(base: str) -> tuple[str, redis.Redis]:
    """The first of TEST_REDIS_DBS that no live run holds, flushed and claimed for this one."""
    me = f"{socket.gethostname()} {os.getpid()}"
    for db in TEST_REDIS_DBS:
        url = urlunsplit(urlsplit(base)._replace(path=f"/{db}"))
        client = redis.Redis.from_url(url)
        holder = client.get(CLAIM_KEY)
        if holder is not None and _alive(holder.decode()):
            continue
        client.flushdb()
        if client.set(CLAIM_KEY, me, nx=True):
            return url, client
    raise RuntimeError(f"every test Redis DB {TEST_REDIS_DBS} is held by a running suite")


def _alive(holder: str) -> bool:
    """Whether the run that wrote a claim still runs (a claim from another host counts as live)."""
    host, _, pid = holder.rpartition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


TEST_SETTINGS = {
    "SHOPIFY_API_KEY": "test-api-key",
    "SHOPIFY_API_SECRET": API_SECRET,
    "SECRET_KEY": "test-secret-key",
    "PICK_DELAY_S": "0.2",
    "PACK_DELAY_S": "0.2",
    "SWEEP_INTERVAL_S": "5",
    "IDLE_SWEEP_INTERVAL_S": "15",
    "DELIVERY_EVENT_DELAY_S": "0.3",
    "OPERATOR_API_TOKEN": "test-operator-token",
    "SIMULATOR_MAX_UNITS_PER_PACKAGE": "4",
}


@pytest.fixture(scope="session")
def system(redis_url, make_database, tmp_path_factory) -> Iterator[System]:
    """The whole system for end-to-end tests: sandbox store, web, one Celery worker, beat, real Redis."""
    workdir = tmp_path_factory.mktemp("system")
    running = start_system(workdir, TEST_SETTINGS, database_url=make_database(), redis_url=redis_url)
    try:
        yield running
    finally:
        running.stop(keep_files=True)
        print(f"\nsystem logs in {workdir / 'log'}")


_shop_numbers = itertools.count(1)


@pytest.fixture
def connected_shop(system, request) -> ConnectedShop:
    """A fresh shop on the sandbox with our app installed and registered as its fulfillment service.

    No webhook subscriptions: these tests see the callbacks and the sweeps alone at work."""
    domain = f"shop-{next(_shop_numbers)}-{uuid.uuid4().hex[:6]}.myshopify.com"
    return system.connect_shop(domain, subscribe_webhooks=False, **getattr(request, "param", {}))


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parts[-2] == "e2e":
            item.add_marker(pytest.mark.e2e)
