"""Celery tasks: a few lines each, ids in, one core call, Celery's retries for the store's bad moments."""

from __future__ import annotations

import logging
import random
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from fulfillment import delivery, inventory_sync, step, sweep
from fulfillment.models import Shop
from fulfillment.states import Cause
from fulfillment.store.errors import StoreUnavailable, Throttled, UserErrors
from workers import queue
from workers.celery_app import celery
from workers.runtime import Busy, context, exclusive, redis_client

log = logging.getLogger("workers.tasks")

TRANSIENT = (StoreUnavailable, Throttled, OperationalError, IntegrityError, ConnectionError, Busy)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 100,
}


@celery.task(name=queue.SWEEP_SHOP_TASK, **RETRY)
def sweep_shop(shop_id: int, cause: str = Cause.POLL, scope: str | None = None, priority: int | None = None) -> int:
    scope = sweep.Scope(scope or queue.scope_for(cause))
    try:
        with queue.sweep_lock(redis_client(), shop_id, scope):
            wait = queue.sweep_due_in(redis_client(), shop_id, scope=scope)
            if wait <= 0:
                return _sweep(shop_id, cause, scope)
    except Busy:
        wait = queue.SWEEP_BUSY_RETRY_S  # another sweep of its kind runs on the shop; this one follows it
    # Still waiting: pings go on folding into this sweep, which runs when the shop's spacing allows.
    queue.sweep_waits(redis_client(), shop_id, scope, wait)
    sweep_shop.apply_async(
        (shop_id, cause, str(scope), priority),
        countdown=wait,
        priority=queue.sweep_priority(scope) if priority is None else priority,
    )
    return 0


def _sweep(shop_id: int, cause: str, scope: sweep.Scope) -> int:
    started = queue.sweep_started(redis_client(), shop_id, scope=scope)
    try:
        found = sweep.sweep_shop(context(), shop_id, Cause(cause), scope)
    except Throttled as exc:
        raise sweep_shop.retry(exc=exc, countdown=_after(exc)) from exc
    queue.sweep_finished(redis_client(), shop_id, found.listed, started, scope=scope)
    _shop_queue(shop_id).start(found.due, cause)
    queue.notice_heard(redis_client(), shop_id, started)
    return len(found.due)


@celery.task(name=queue.STEP_TASK, **RETRY)
def advance_fulfillment_order(
    record_id: int, cause: str = Cause.WORKER, shop_id: int | None = None, chain: str | None = None
) -> None:
    chains = _shop_queue(shop_id)
    try:
        with chains.step(record_id, chain) as held:
            if held is None:
                return  # a newer chain took over this fulfillment order
            after = step.advance(context(), record_id, Cause(cause))
            for package_id in after.shipped:
                post_delivery_event.apply_async((package_id,), countdown=context().config.delivery_event_delay_s)

            def first(pipe) -> None:
                # The lock goes, and the budget hears what the step's last request cost, in the chain's own
                # round trip, before its next step is sent.
                context().budget.settle(pipe)
                held.release_in(pipe)

            if after.done:
                chains.finished(record_id, first=first)
            else:
                chains.then(record_id, Cause.WORKER, chain, after.delay, first=first)
    except UserErrors as exc:
        # The store refused a step it offered a moment ago: the merchant acted in between. Look again.
        log.info("store_refused record=%s errors=%s", record_id, exc)
        if advance_fulfillment_order.request.retries >= 5:
            raise
        raise advance_fulfillment_order.retry(exc=exc, countdown=2) from exc
    except Busy as exc:
        # Another step of this fulfillment order holds it: try again shortly, not after a growing backoff.
        raise advance_fulfillment_order.retry(exc=exc, countdown=1 + 2 * random.random()) from exc
    except Throttled as exc:
        # The shop's budget is spoken for: the worker goes to other shops' work, and this step comes back when
        # the budget has refilled. A new message, not a retry: waiting for budget is no failure to count.
        chains.then(record_id, cause, chain, _after(exc))


def _shop_queue(shop_id: int | None) -> queue.ShopQueue:
    return queue.ShopQueue(celery, redis_client(), shop_id)


def _after(throttled: Throttled) -> float:
    # Spread out, so the steps the budget turned away do not all come back in the same instant.
    return throttled.retry_after * (1 + 0.5 * random.random())


@celery.task(name=queue.DELIVERY_EVENT_TASK, **RETRY)
def post_delivery_event(package_id: int) -> None:
    later = delivery.post_delivery_event(context(), package_id)
    if not later.done:
        post_delivery_event.apply_async((package_id,), countdown=later.delay)


@celery.task(name=queue.PRUNE_DELIVERIES_TASK)
def prune_deliveries() -> int:
    return delivery.prune_deliveries(context())


@celery.task(name=queue.SWEEP_ALL_SHOPS_TASK)
def sweep_all_shops() -> int:
    """Every shop once (beat's start): idle ones behind all other work."""
    with context().db.transaction() as session:
        shops = sweep.shops_to_sweep(session)
    for shop_id, busy in shops:
        _scheduled_sweep(shop_id, sweep.Scope.FULL if busy else sweep.Scope.IDLE)
    return len(shops)


@celery.task(name=queue.SWEEP_DUE_SHOPS_TASK)
def sweep_due_shops() -> int:
    """The shops whose moment in their interval came since the last tick."""
    config = context().config
    now = time.time()
    since = queue.sweep_tick(redis_client(), now, longest_s=max(config.sweep_interval_s, config.idle_sweep_interval_s))
    with context().db.transaction() as session:
        shops = sweep.shops_to_sweep(session)
    # A shop the store told us about, and whose sweep did not finish since, is swept as one with open work.
    noticed = queue.noticed_shops(redis_client(), {shop_id for shop_id, _busy in shops})
    shops = [(shop_id, busy or shop_id in noticed) for shop_id, busy in shops]
    due = sweep.due_between(shops, since, now, config.sweep_interval_s, config.idle_sweep_interval_s)
    for shop_id, scope in due:
        _scheduled_sweep(shop_id, scope)
    return len(due)


def _scheduled_sweep(shop_id: int, scope: sweep.Scope) -> None:
    queue.request_sweep(
        celery, redis_client(), shop_id, Cause.POLL, scope=scope, priority=queue.sweep_priority(scope, scheduled=True)
    )


# --- inventory pushed to the store -----------------------------------------------------------------------


def _request_inventory_push(shop_id: int) -> None:
    pending = queue.INVENTORY_PENDING_KEY.format(shop_id=shop_id)
    if redis_client().set(pending, "1", nx=True, ex=queue.INVENTORY_PENDING_TTL_S):
        celery.send_task(queue.PUSH_INVENTORY_TASK, args=(shop_id,))


@celery.task(name=queue.PUSH_DUE_INVENTORY_TASK)
def push_due_inventory() -> int:
    """Beat's look for shelves owed a push (the marker is in the database: nothing is lost with a worker)."""
    with context().db.transaction() as session:
        shop_ids = inventory_sync.shops_due(session)
    for shop_id in shop_ids:
        _request_inventory_push(shop_id)
    return len(shop_ids)


@celery.task(name=queue.PUSH_INVENTORY_TASK, **RETRY)
def push_inventory(shop_id: int) -> None:
    redis_client().delete(queue.INVENTORY_PENDING_KEY.format(shop_id=shop_id))
    try:
        with exclusive(f"inventory:{shop_id}"):
            result = inventory_sync.push_inventory(context(), shop_id)
    except (Busy, Throttled) as exc:
        # Another push of the shop is at work, or its budget is spoken for: what is still owed stays marked, and
        # beat's next look queues it again.
        log.info("inventory_push_later shop=%s reason=%s", shop_id, type(exc).__name__)
        return
    log.info(
        "inventory_push shop=%s pushed=%s unchanged=%s not_matched=%s deferred=%s mutations=%s stale=%s "
        "lost_answers=%s max_staleness_s=%.3f",
        shop_id,
        result.pushed,
        result.unchanged,
        result.not_matched,
        result.deferred,
        result.mutations,
        result.stale,
        result.lost_answers,
        result.max_staleness_s,
    )


@celery.task(name=queue.RECONCILE_ALL_INVENTORY_TASK)
def reconcile_all_inventory() -> int:
    with context().db.transaction() as session:
        shop_ids = session.scalars(
            select(Shop.id).where(
                Shop.uninstalled_at.is_(None), Shop.access_token_ciphertext.is_not(None), Shop.location_id.is_not(None)
            )
        ).all()
    for shop_id in shop_ids:
        # Every shop at once, every few minutes: behind all real work, as the idle shops' sweeps are.
        celery.send_task(queue.RECONCILE_INVENTORY_TASK, args=(shop_id,), priority=queue.PRIORITY_IDLE)
    return len(shop_ids)


@celery.task(name=queue.RECONCILE_INVENTORY_TASK, **RETRY)
def reconcile_inventory(shop_id: int) -> None:
    try:
        with exclusive(f"inventory:{shop_id}"):
            result = inventory_sync.reconcile(context(), shop_id)
    except Throttled as exc:
        raise reconcile_inventory.retry(exc=exc, countdown=_after(exc)) from exc
    log.info(
        "inventory_reconcile shop=%s checked=%s drifted=%s repaired=%s",
        shop_id,
        result.checked,
        result.drifted,
        result.repaired.pushed,
    )
