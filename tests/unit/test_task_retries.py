"""A task that loses a database race (a row made by another worker first, a deadlock, a serialization failure)
is retried with backoff: the next try re-reads and finds the other worker's row, and no order is left behind."""

from __future__ import annotations

import psycopg.errors
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from workers import tasks

RETRIED = [
    tasks.advance_fulfillment_order,
    tasks.sweep_shop,
    tasks.post_delivery_event,
    tasks.push_inventory,
    tasks.reconcile_inventory,
]


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key value")),
        OperationalError("UPDATE", {}, psycopg.errors.DeadlockDetected("deadlock detected")),
        OperationalError("UPDATE", {}, psycopg.errors.SerializationFailure("could not serialize access")),
    ],
    ids=["unique-violation", "deadlock", "serialization"],
)
@pytest.mark.parametrize("task", RETRIED, ids=lambda task: task.name)
def test_a_database_race_is_retried_with_backoff(task, error):
    assert isinstance(error, task.autoretry_for)
    assert task.retry_backoff and task.max_retries
