"""Health, readiness and Prometheus metrics, read over HTTP from the running web app while gunicorn's workers
and the Celery worker count into the same Redis."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from devstack.wait import wait_for
from fulfillment.metrics import (
    FLUSH_INTERVAL_S,
    MetricsCollector,
    queue_depth,
    record_http_request,
    record_task_outcome,
)
from workers.broker import TRANSPORT


def scrape(system) -> dict[tuple[str, frozenset], float]:
    response = requests.get(f"{system.app_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def only_fo(order: dict) -> dict:
    (fo,) = order["fulfillment_orders"]
    return fo


def ship(shop, sku: str) -> str:
    shop.set_stock(sku, 10)
    order = shop.place_order([{"sku": sku, "title": sku, "quantity": 1}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    wait_for(lambda: (r := shop.record(fo_id)) is not None and r.state == "shipped", what=f"{sku} to ship")
    return fo_id


def test_health_and_readiness(system):
    assert requests.get(f"{system.app_url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{system.app_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_http_requests_are_counted_by_endpoint_and_status_across_web_workers(system):
    # What the workers answered before the test (the stack's own readiness checks) reaches Redis within the
    # flush interval: let it land, so that it is all in `before`.
    time.sleep(2 * FLUSH_INTERVAL_S)
    before = scrape(system)
    for _ in range(10):  # enough that both gunicorn workers answer some
        requests.get(f"{system.app_url}/healthz", timeout=10)
    requests.post(f"{system.app_url}/webhooks", data=b"{}", timeout=10)  # unsigned: 401
    requests.get(f"{system.app_url}/no-such-page", timeout=10)
    requests.request("BREW", f"{system.app_url}/healthz", timeout=10)

    # Each web worker adds its counts to Redis within a second (app.metrics): wait for the other worker's.
    expected = {
        ("health.healthz", "GET", "200"): 10,
        ("webhooks.receive", "POST", "401"): 1,
        ("unmatched", "GET", "404"): 1,
        ("unmatched", "other", "405"): 1,
    }

    def all_counted():
        samples = scrape(system)
        name = "fulfillment_http_requests_total"
        counted = all(
            value(samples, name, endpoint=e, method=m, status=c) - value(before, name, endpoint=e, method=m, status=c)
            >= n
            for (e, m, c), n in expected.items()
        )
        return samples if counted else None

    after = wait_for(all_counted, timeout=10, what="both workers' counts")

    def delta(**labels):
        return value(after, "fulfillment_http_requests_total", **labels) - value(
            before, "fulfillment_http_requests_total", **labels
        )

    assert delta(endpoint="health.healthz", method="GET", status="200") == 10
    assert delta(endpoint="webhooks.receive", method="POST", status="401") == 1
    assert delta(endpoint="unmatched", method="GET", status="404") == 1
    assert delta(endpoint="unmatched", method="other", status="405") == 1
    # The scrape before this one was counted too.
    assert delta(endpoint="metrics.metrics", method="GET", status="200") >= 1
    assert value(after, "fulfillment_metrics_source_up", source="redis") == 1


def test_task_outcomes_from_the_workers_are_counted(connected_shop):
    shop = connected_shop
    system = shop.system
    before = scrape(system)

    def delta(samples, task, outcome):
        name = "fulfillment_task_outcomes_total"
        return value(samples, name, task=task, outcome=outcome) - value(before, name, task=task, outcome=outcome)

    ship(shop, f"METRIC-{uuid.uuid4().hex[:6]}")
    # A worker adds its counts to Redis about once a second: the last step's may come just after the shipment.
    wait_for(
        lambda: (
            delta(after := scrape(system), "workers.tasks.sweep_shop", "success") >= 1
            and delta(after, "workers.tasks.advance_fulfillment_order", "success") >= 3
        ),
        what="the steps' outcomes counted",
    )

    # The store fails every call for a moment: the sweep is retried, and counted as such.
    shop.merchant.set_faults(error_rate=1.0)
    try:
        system.celery().send_task("workers.tasks.sweep_shop", args=(shop.shop_id, "poll"))
        wait_for(lambda: delta(scrape(system), "workers.tasks.sweep_shop", "retry") >= 1, what="a retry to be counted")
    finally:
        shop.merchant.set_faults(error_rate=0.0)

    # A task that cannot run at all (no such cause) fails, and is counted as a failure.
    system.celery().send_task("workers.tasks.sweep_shop", args=(shop.shop_id, "no-such-cause"))
    wait_for(lambda: delta(scrape(system), "workers.tasks.sweep_shop", "failure") >= 1, what="a failure")


def test_queue_depth_and_reserved_tasks_are_shown(system):
    samples = scrape(system)
    assert ("fulfillment_queue_depth", frozenset({("queue", "celery")})) in samples
    assert ("fulfillment_tasks_reserved", frozenset()) in samples


@pytest.mark.parametrize(
    "connected_shop", [{"throttle": {"maximum_available": 200, "restore_rate": 10}}], indirect=True
)
def test_store_cost_and_throttle_waits_are_shown_per_shop(connected_shop):
    shop = connected_shop
    # A small, slow bucket and more orders at once than it holds points for (about 24 an order): the steps
    # have to wait for points.
    skus = [f"COST-{uuid.uuid4().hex[:6]}" for _ in range(12)]
    fo_ids = []
    for sku in skus:
        shop.set_stock(sku, 10)
        order = shop.place_order([{"sku": sku, "title": sku, "quantity": 1}])
        fo_ids.append(only_fo(order)["id"])
    for fo_id in fo_ids:
        shop.merchant.request_fulfillment(fo_id)
    try:
        for fo_id in fo_ids:
            wait_for(
                lambda f=fo_id: (r := shop.record(f)) is not None and r.state == "shipped",
                timeout=240,
                what="the orders to ship",
            )
    finally:
        # A sweep of a shop this slow sleeps for its points in a worker process: the tests after need the workers.
        shop.retire()
    samples = scrape(shop.system)
    spent = value(samples, "fulfillment_store_cost_points_total", shop=shop.domain)
    assert spent > 0
    store_side = shop.merchant.state()["cost"]["cost_charged"]
    assert spent <= store_side  # what we counted the store charged us (it also charged the fixture's calls)
    assert value(samples, "fulfillment_store_throttle_waits_total", shop=shop.domain) >= 1
    assert value(samples, "fulfillment_store_throttle_wait_seconds_total", shop=shop.domain) > 0


# --- the collector against a real Redis broker (no system) ----------------------------------------------------


def test_queue_depth_counts_every_priority_of_a_celery_queue(redis_url):
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    sender = Celery("metrics-test", broker=redis_url)
    sender.conf.update(broker_transport=TRANSPORT, task_default_queue=queue)
    client = redis.Redis.from_url(redis_url)
    try:
        for priority in (None, 0, 5, 9):
            sender.send_task("workers.tasks.sweep_all_shops", priority=priority)
        assert queue_depth(client, queue) == 4
        families = {f.name: f for f in MetricsCollector(client, queues=(queue,)).collect()}
        (sample,) = families["fulfillment_queue_depth"].samples
        assert sample.labels == {"queue": queue} and sample.value == 4
    finally:
        client.delete(*client.keys(f"{queue}*"))


def test_counters_are_shared_between_processes_through_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    other_process = redis.Redis.from_url(redis_url)
    key_tag = uuid.uuid4().hex[:6]
    record_http_request(client, f"x.{key_tag}", "GET", 200)
    record_http_request(other_process, f"x.{key_tag}", "GET", 200)
    record_task_outcome(other_process, f"t.{key_tag}", "retry")
    with pytest.raises(ValueError):
        record_task_outcome(client, f"t.{key_tag}", "exploded")

    families = {f.name: f for f in MetricsCollector(client).collect()}

    http = {json.dumps(s.labels, sort_keys=True): s.value for s in families["fulfillment_http_requests"].samples}
    assert http[json.dumps({"endpoint": f"x.{key_tag}", "method": "GET", "status": "200"}, sort_keys=True)] == 2
    tasks = [s for s in families["fulfillment_task_outcomes"].samples if s.labels["task"] == f"t.{key_tag}"]
    assert [(s.labels["outcome"], s.value) for s in tasks] == [("retry", 1)]


def test_metrics_still_answer_when_redis_is_away():
    away = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2, socket_timeout=0.2)
    families = {f.name: f for f in MetricsCollector(away).collect()}
    assert "fulfillment_http_requests" not in families
    up = {s.labels["source"]: s.value for s in families["fulfillment_metrics_source_up"].samples}
    assert up == {"redis": 0, "store_cost": 1}
