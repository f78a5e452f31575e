"""The Celery application: Redis as broker, tasks acknowledged late so a killed worker's task runs again."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import beat_init, task_postrun, worker_init, worker_process_init

from fulfillment.config import Config
from workers import logs, signals
from workers.broker import TRANSPORT
from workers.queue import (
    PRUNE_DELIVERIES_TASK,
    PUSH_DUE_INVENTORY_TASK,
    RECONCILE_ALL_INVENTORY_TASK,
    SWEEP_ALL_SHOPS_TASK,
    SWEEP_DUE_SHOPS_TASK,
    SWEEP_TICK_S,
)
from workers.runtime import freeze_heap, settle_budget

TASKS = "workers.tasks"
log = logging.getLogger("workers.celery_app")


def make_celery(config: Config) -> Celery:
    app = Celery("fulfillment", broker=config.redis_url, include=[TASKS])
    app.conf.update(
        broker_transport=TRANSPORT,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_always_eager=config.task_always_eager,
        broker_connection_retry_on_startup=True,
        # How soon a task held by a worker that died is handed to another.
        broker_transport_options={"visibility_timeout": config.broker_visibility_timeout_s},
        # Each tick sweeps the shops whose moment in their interval came (`sweep_due_shops`): a shop with open
        # work every SWEEP_INTERVAL_S, an idle one every IDLE_SWEEP_INTERVAL_S, spread over the interval.
        beat_schedule={
            "sweep-due-shops": {
                "task": SWEEP_DUE_SHOPS_TASK,
                "schedule": min(SWEEP_TICK_S, config.sweep_interval_s),
                # A tick that waited past the next one is superseded by it.
                "options": {"expires": SWEEP_TICK_S * 5},
            },
            "push-due-inventory": {"task": PUSH_DUE_INVENTORY_TASK, "schedule": config.inventory_push_interval_s},
            "reconcile-all-inventory": {
                "task": RECONCILE_ALL_INVENTORY_TASK,
                "schedule": config.inventory_reconcile_interval_s,
            },
            # The store's deliveries are kept for its retry window (48 h) only; an hour's slack is nothing.
            "prune-deliveries": {"task": PRUNE_DELIVERIES_TASK, "schedule": 3600.0},
        },
        worker_hijack_root_logger=False,
    )
    signals.connect()  # task outcomes for /metrics
    worker_init.connect(freeze_heap, weak=False, dispatch_uid="fulfillment.freeze_heap.worker")
    worker_process_init.connect(freeze_heap, weak=False, dispatch_uid="fulfillment.freeze_heap.child")
    task_postrun.connect(settle_budget, weak=False, dispatch_uid="fulfillment.settle_budget")
    logs.connect()
    return app


@beat_init.connect
def sweep_on_start(sender=None, **_kwargs) -> None:
    """Reconcile every shop as soon as beat starts: a callback dropped while nothing ran is found now, not one
    sweep interval later (a new schedule's first run is one interval away)."""
    try:
        sender.app.send_task(SWEEP_ALL_SHOPS_TASK)
    except Exception as exc:  # the schedule's own sweep follows; beat must not die for this one
        log.warning("start_up_sweep_not_sent error=%s", type(exc).__name__)


celery = make_celery(Config.from_env())
