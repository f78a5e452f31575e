"""The store's callback path at its lowest cost: installed shops remembered for a few seconds, request counts
added to Redis in batches, the limiter's hooks kept to the dashboard, the ping's field checked without a schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import redis
from flask import Flask

from app import limits
from devstack.wait import wait_for
from fulfillment import schemas
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.metrics import BufferedCounter, RedisCounter
from fulfillment.models import Shop
from fulfillment.shops import ActiveShops, active_shop_id, save_token

SHOP = "a-shop.myshopify.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    yield context
    context.db.dispose()


def uninstall(ctx: Context, shop_id: int) -> None:
    with ctx.db.transaction() as session:
        session.get(Shop, shop_id).uninstalled_at = datetime.now(UTC)


def test_an_installed_shop_is_found_by_one_select_in_any_letter_case(ctx):
    shop_id = save_token(ctx, SHOP, "tok")
    assert active_shop_id(ctx.db, SHOP.upper()) == shop_id
    assert active_shop_id(ctx.db, "other.myshopify.com") is None
    uninstall(ctx, shop_id)
    assert active_shop_id(ctx.db, SHOP) is None


def test_an_uninstall_elsewhere_is_seen_once_the_entry_is_older_than_its_ttl(ctx):
    clock = Clock()
    shops = ActiveShops(ctx.db, ttl_s=5.0, clock=clock)
    shop_id = save_token(ctx, SHOP, "tok")
    assert shops.lookup(SHOP) == shop_id
    uninstall(ctx, shop_id)
    clock.now += 4.9
    assert shops.lookup(SHOP) == shop_id  # within the TTL: as read before
    clock.now += 0.2
    assert shops.lookup(SHOP) is None


def test_an_uninstall_this_process_answered_is_seen_at_once(ctx):
    shops = ActiveShops(ctx.db, clock=Clock())
    shop_id = save_token(ctx, SHOP, "tok")
    assert shops.lookup(SHOP) == shop_id
    uninstall(ctx, shop_id)
    shops.forget(SHOP.upper())
    assert shops.lookup(SHOP) is None


def test_a_shop_unknown_at_one_ping_is_served_at_its_first_ping_after_installing(ctx):
    shops = ActiveShops(ctx.db, clock=Clock())
    assert shops.lookup(SHOP) is None
    shop_id = save_token(ctx, SHOP, "tok")
    assert shops.lookup(SHOP) == shop_id


def test_the_memory_of_shops_stays_within_its_bound(ctx):
    shops = ActiveShops(ctx.db, clock=Clock(), max_entries=3)
    domains = [f"shop-{i}.myshopify.com" for i in range(7)]
    for domain in domains:
        save_token(ctx, domain, "tok")
        assert shops.lookup(domain) is not None
        assert len(shops._entries) <= 3


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_buffered_counts_reach_redis_at_a_flush_and_wait_for_the_next_one_while_redis_is_away(redis_client):
    key = f"test:counts:{uuid.uuid4().hex}"
    counter = BufferedCounter(RedisCounter(redis_client, key, ("endpoint", "status")), interval_s=3600)
    try:
        counter.inc("callbacks.x", "200")
        counter.inc("callbacks.x", "200")
        counter.inc("health.y", "503")
        assert redis_client.hlen(key) == 0  # held in the process until a flush
        counter.flush()
        assert counter.counter.read() == {("callbacks.x", "200"): 2.0, ("health.y", "503"): 1.0}

        away = BufferedCounter(RedisCounter(redis.Redis(port=1, socket_connect_timeout=0.2), key, ("e", "s")))
        away.inc("callbacks.x", "200")
        with pytest.raises(redis.RedisError):
            away.flush()
        away.counter.redis = redis_client  # Redis back: what was held goes in
        away.flush()
        assert counter.counter.read()[("callbacks.x", "200")] == 3.0
        with pytest.raises(ValueError):
            counter.inc("only-one-label")
    finally:
        redis_client.delete(key)


def test_counts_of_a_process_that_counts_nothing_more_reach_redis_within_the_interval(redis_client):
    key = f"test:counts:{uuid.uuid4().hex}"
    counter = BufferedCounter(RedisCounter(redis_client, key, ("endpoint",)), interval_s=0.05)
    try:
        counter.inc("health.healthz")
        wait_for(lambda: redis_client.hget(key, json.dumps(["health.healthz"])) == b"1", what="the flush", timeout=5)
    finally:
        redis_client.delete(key)


def test_the_limiter_runs_on_the_dashboard_only_and_a_limit_elsewhere_is_refused(redis_url):
    from app import create_app

    app = create_app(Config(redis_url=redis_url, database_url="sqlite://"))
    (limiter,) = app.extensions["limiter"]
    for table in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        assert not any(limits._is_limiter_hook(f, limiter) for f in table[None])
        assert any(limits._is_limiter_hook(f, limiter) for f in table["dashboard"])

    other = Flask("t")
    other.add_url_rule("/open", "open", lambda: "ok")
    other_limiter = limits.init_app(other, Config(redis_url=redis_url))
    other.view_functions["open"] = other_limiter.limit("1 per minute")(other.view_functions["open"])
    with pytest.raises(RuntimeError, match="outside"):
        limits.check_scope(other, other_limiter)


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "FULFILLMENT_REQUEST"},
        {"kind": "CANCELLATION_REQUEST", "extra": [1]},
        {"kind": "FULFILLMENT_SERVICE_DELETE"},
        {},
        {"kind": None},
        {"kind": 7},
        {"kind": ["FULFILLMENT_REQUEST"]},
    ],
)
def test_the_pings_hand_check_agrees_with_its_schema(payload):
    def outcome(load):
        try:
            return load()
        except schemas.ShapeError as exc:
            return str(exc)

    by_schema = outcome(lambda: schemas._load(schemas.FulfillmentOrderNotification, payload))
    assert outcome(lambda: schemas.notification(payload)) == by_schema
