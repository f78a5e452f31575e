"""Task outcomes (success, retry, failure by task name) counted in Redis, for the web app's `/metrics`."""

from __future__ import annotations

import logging

from celery.signals import task_failure, task_retry, task_success
from redis import RedisError

from fulfillment.metrics import record_task_outcome
from workers.runtime import redis_client

log = logging.getLogger("workers.signals")


def _record(task, outcome: str) -> None:
    name = getattr(task, "name", None) or str(task)
    try:
        record_task_outcome(redis_client(), name, outcome)
    except RedisError as exc:
        # A lost count must never fail the task it counts.
        log.warning("task_metric_lost task=%s outcome=%s error=%s", name, outcome, type(exc).__name__)


def _on_success(sender=None, **_kwargs) -> None:
    _record(sender, "success")


def _on_retry(sender=None, **_kwargs) -> None:
    _record(sender, "retry")


def _on_failure(sender=None, **_kwargs) -> None:
    _record(sender, "failure")


def connect() -> None:
    """Count every task's outcome in this process; connecting again is a no-op."""
    task_success.connect(_on_success, weak=False, dispatch_uid="fulfillment.metrics.task_success")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="fulfillment.metrics.task_retry")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="fulfillment.metrics.task_failure")
