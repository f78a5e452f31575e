"""Counters for Prometheus that every process adds to and the web process shows at `/metrics`.

Web requests are served by several gunicorn workers and tasks run in separate Celery processes, so counters
live in Redis hashes (one field per label set) rather than in process memory; `MetricsCollector` reads them
back at scrape time, with what can be read directly: the length of the task queue and each shop's store cost.
A web process counts its requests in memory first and adds them to Redis about once a second
(`BufferedCounter`): a Redis round trip per request would cost more than some of the requests it counts.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from fulfillment.context import Context
from fulfillment.models import Shop
from fulfillment.store.throttle import BudgetMetrics

log = logging.getLogger("fulfillment.metrics")

HTTP_REQUESTS_KEY = "fulfillment:metrics:http_requests"
TASK_OUTCOMES_KEY = "fulfillment:metrics:task_outcomes"
TASK_OUTCOMES = ("success", "retry", "failure")

# Celery's Redis transport keeps one list per queue and priority step: `celery`, then `celery\x06\x163` etc.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
# Messages a worker has taken but not yet acknowledged (running, or waiting for their countdown).
_UNACKED_KEY = "unacked"


class RedisCounter:
    """A labelled counter kept in one Redis hash; each field is the JSON list of its label values."""

    def __init__(self, redis_client, key: str, labels: Sequence[str]):
        self.redis = redis_client
        self.key = key
        self.labels = tuple(labels)

    def inc(self, *values: str, amount: int = 1) -> None:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.key} takes labels {self.labels}, got {values}")
        self.redis.hincrby(self.key, json.dumps([str(v) for v in values]), amount)

    def read(self) -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {}
        for field, value in self.redis.hgetall(self.key).items():
            try:
                labels = tuple(json.loads(field))
            except ValueError:
                continue
            if len(labels) == len(self.labels):
                counts[labels] = float(value)
        return counts

    def add(self, counts: dict[tuple[str, ...], int]) -> None:
        """Add many label sets' counts in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for values, amount in counts.items():
            pipe.hincrby(self.key, json.dumps([str(v) for v in values]), amount)
        pipe.execute()


# How far behind Redis a process's request counts may be. A scrape (every 15 s or more) sees them all but the
# last second's, and the process adds what it holds when it exits.
FLUSH_INTERVAL_S = 1.0


class BufferedCounter:
    """Counts kept in this process and added to a `RedisCounter` every `interval_s` seconds by a background
    thread (started at the first count, in the process that counts: a forked child starts its own).

    While Redis is away the counts wait here for the next flush, so an outage loses none of them unless the
    process ends during it. Their number is bounded by the label sets, which the callers keep few.
    """

    def __init__(self, counter: RedisCounter, interval_s: float = FLUSH_INTERVAL_S):
        self.counter = counter
        self.interval_s = interval_s
        self._pending: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def inc(self, *values: str, amount: int = 1) -> None:
        if len(values) != len(self.counter.labels):
            raise ValueError(f"{self.counter.key} takes labels {self.counter.labels}, got {values}")
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._pending[values] += amount

    def flush(self) -> None:
        """Add what this process holds to Redis now; on a Redis error it is kept for the next try."""
        with self._lock:
            counts, self._pending = self._pending, Counter()
        if not counts:
            return
        try:
            self.counter.add(counts)
        except RedisError:
            with self._lock:
                self._pending.update(counts)
            raise

    def _start(self) -> None:
        # Called with the lock held. What a parent process counted before forking is the parent's to add.
        self._pid = os.getpid()
        self._pending.clear()
        threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
        atexit.register(self._flush_quietly)

    def _run(self) -> None:
        pid = self._pid
        while self._pid == pid:
            time.sleep(self.interval_s)
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except RedisError as exc:
            log.debug("request_metrics_held error=%s", type(exc).__name__)


def http_requests(redis_client) -> RedisCounter:
    return RedisCounter(redis_client, HTTP_REQUESTS_KEY, ("endpoint", "method", "status"))


def task_outcomes(redis_client) -> RedisCounter:
    return RedisCounter(redis_client, TASK_OUTCOMES_KEY, ("task", "outcome"))


def record_http_request(redis_client, endpoint: str, method: str, status: int) -> None:
    http_requests(redis_client).inc(endpoint, method, str(status))


def record_task_outcome(redis_client, task: str, outcome: str) -> None:
    if outcome not in TASK_OUTCOMES:
        raise ValueError(f"outcome must be one of {TASK_OUTCOMES}")
    task_outcomes(redis_client).inc(task, outcome)


def queue_depth(redis_client, queue: str) -> int:
    """Messages waiting in a Celery queue on the Redis broker (every priority step)."""
    pipe = redis_client.pipeline(transaction=False)
    pipe.llen(queue)
    for step in _PRIORITY_STEPS:
        pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
    return int(sum(pipe.execute()))


def shop_domains(ctx: Context) -> list[str]:
    with ctx.db.transaction() as session:
        return list(session.scalars(select(Shop.domain).order_by(Shop.domain)))


class MetricsCollector:
    """A prometheus_client collector reading the shared counters and gauges at scrape time.

    A part that cannot be read (Redis or the database away) is left out and `fulfillment_metrics_source_up`
    says which, so a scrape still answers while readiness reports the outage.
    """

    def __init__(
        self,
        redis_client,
        *,
        queues: Sequence[str] = ("celery",),
        shops: Callable[[], Iterable[str]] = lambda: (),
        budget_metrics: Callable[[str], BudgetMetrics] | None = None,
    ):
        self.redis = redis_client
        self.queues = tuple(queues)
        self.shops = shops
        self.budget_metrics = budget_metrics

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "fulfillment_metrics_source_up", "Whether a source of these metrics could be read.", labels=["source"]
        )
        try:
            yield from self._from_redis()
            up.add_metric(["redis"], 1)
        except RedisError as exc:
            log.warning("metrics_unavailable source=redis error=%s", type(exc).__name__)
            up.add_metric(["redis"], 0)
        try:
            yield from self._store_cost()
            up.add_metric(["store_cost"], 1)
        except (RedisError, SQLAlchemyError) as exc:
            log.warning("metrics_unavailable source=store_cost error=%s", type(exc).__name__)
            up.add_metric(["store_cost"], 0)
        yield up

    def _from_redis(self) -> list[Metric]:
        # Read everything before yielding anything, so a failure midway leaves out the whole part.
        requests = CounterMetricFamily(
            "fulfillment_http_requests",
            "HTTP requests answered by the web app.",
            labels=["endpoint", "method", "status"],
        )
        for labels, value in sorted(http_requests(self.redis).read().items()):
            requests.add_metric(list(labels), value)
        tasks = CounterMetricFamily(
            "fulfillment_task_outcomes", "Celery task runs by task name and outcome.", labels=["task", "outcome"]
        )
        for labels, value in sorted(task_outcomes(self.redis).read().items()):
            tasks.add_metric(list(labels), value)
        depth = GaugeMetricFamily("fulfillment_queue_depth", "Tasks waiting in the Celery queue.", labels=["queue"])
        for queue in self.queues:
            depth.add_metric([queue], queue_depth(self.redis, queue))
        unacked = GaugeMetricFamily(
            "fulfillment_tasks_reserved", "Tasks taken by a worker and not yet acknowledged (running or delayed)."
        )
        unacked.add_metric([], self.redis.hlen(_UNACKED_KEY))
        return [requests, tasks, depth, unacked]

    def _store_cost(self) -> list[Metric]:
        cost = CounterMetricFamily(
            "fulfillment_store_cost_points", "Store API cost points charged, per shop.", labels=["shop"]
        )
        waits = CounterMetricFamily(
            "fulfillment_store_throttle_waits",
            "Times a store call waited for the shop's rate-limit bucket.",
            labels=["shop"],
        )
        waited = CounterMetricFamily(
            "fulfillment_store_throttle_wait_seconds",
            "Seconds store calls waited for the bucket, per shop.",
            labels=["shop"],
        )
        if self.budget_metrics is not None:
            for shop in self.shops():
                m = self.budget_metrics(shop)
                cost.add_metric([shop], m.cost_spent)
                waits.add_metric([shop], m.throttle_waits)
                waited.add_metric([shop], m.throttle_wait_seconds)
        return [cost, waits, waited]
