"""Task outcomes (success, retry, failure by task name) counted in Redis, for the web app's `/metrics`.

Counted in the process first and added to Redis about once a second (`fulfillment.metrics.BufferedCounter`), as
the web process counts its requests: a Redis round trip for every task was a good part of a short step's cost.
"""

from __future__ import annotations

import logging
from functools import cache

from celery.signals import task_failure, task_retry, task_success, worker_process_shutdown
from redis import RedisError

from fulfillment.metrics import TASK_OUTCOMES, BufferedCounter, task_outcomes
from workers.runtime import redis_client

log = logging.getLogger("workers.signals")


@cache
def _outcomes() -> BufferedCounter:
    return BufferedCounter(task_outcomes(redis_client()))


def _record(task, outcome: str) -> None:
    if outcome not in TASK_OUTCOMES:
        raise ValueError(f"outcome must be one of {TASK_OUTCOMES}")
    _outcomes().inc(getattr(task, "name", None) or str(task), outcome)


def _on_success(sender=None, **_kwargs) -> None:
    _record(sender, "success")


def _on_retry(sender=None, **_kwargs) -> None:
    _record(sender, "retry")


def _on_failure(sender=None, **_kwargs) -> None:
    _record(sender, "failure")


def _on_shutdown(**_kwargs) -> None:
    # A pool's child ends without running exit handlers: what it still holds goes now.
    try:
        _outcomes().flush()
    except RedisError as exc:
        log.warning("task_metrics_lost error=%s", type(exc).__name__)


def connect() -> None:
    """Count every task's outcome in this process; connecting again is a no-op."""
    task_success.connect(_on_success, weak=False, dispatch_uid="fulfillment.metrics.task_success")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="fulfillment.metrics.task_retry")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="fulfillment.metrics.task_failure")
    worker_process_shutdown.connect(_on_shutdown, weak=False, dispatch_uid="fulfillment.metrics.task_flush")
