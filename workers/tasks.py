"""Celery tasks: a few lines each, ids in, one core call, Celery's retries for the store's bad moments."""

from __future__ import annotations

import logging
import random

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from fulfillment import delivery, step, sweep
from fulfillment.models import Shop
from fulfillment.states import Cause
from fulfillment.store import StoreUnavailable, Throttled, UserErrors
from workers import queue
from workers.celery_app import celery
from workers.queue import request_sweep
from workers.runtime import Busy, context, exclusive, redis_client

log = logging.getLogger("workers.tasks")

TRANSIENT = (StoreUnavailable, Throttled, OperationalError, ConnectionError, Busy)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 100,
}


@celery.task(**RETRY)
def sweep_shop(shop_id: int, cause: str = Cause.POLL) -> int:
    wait = queue.sweep_due_in(redis_client(), shop_id)
    if wait > 0:
        # Still waiting: pings go on folding into this sweep, which runs when the shop's spacing allows.
        sweep_shop.apply_async((shop_id, cause), countdown=wait)
        return 0
    queue.sweep_started(redis_client(), shop_id)
    try:
        found = sweep.sweep_shop(context(), shop_id, Cause(cause))
    except Throttled as exc:
        raise sweep_shop.retry(exc=exc, countdown=_after(exc)) from exc
    queue.sweep_finished(redis_client(), shop_id, found.listed)
    start_chains(shop_id, queue.admit(redis_client(), shop_id, found.due), cause)
    return len(found.due)


def start_chains(shop_id: int, record_ids: list[int], cause: str) -> None:
    priority = queue.step_priority(redis_client(), shop_id)
    for record_id in record_ids:
        token = queue.start_chain(redis_client(), record_id)
        advance_fulfillment_order.apply_async((record_id, cause, shop_id, token), priority=priority)


@celery.task(**RETRY)
def advance_fulfillment_order(
    record_id: int, cause: str = Cause.WORKER, shop_id: int | None = None, chain: str | None = None
) -> None:
    if not queue.is_current_chain(redis_client(), record_id, chain):
        return  # a newer chain took over this fulfillment order
    if shop_id is not None:
        queue.touch(redis_client(), shop_id, record_id)
    try:
        with exclusive(f"fulfillment-order:{record_id}"):
            next_step = step.advance(context(), record_id, Cause(cause))
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
        countdown = _after(exc)
        if shop_id is not None:
            queue.touch(redis_client(), shop_id, record_id, within_s=countdown)
        _next_step(record_id, cause, shop_id, chain, countdown)
        return
    for package_id in next_step.shipped:
        post_delivery_event.apply_async((package_id,), countdown=context().config.delivery_event_delay_s)
    if not next_step.done:
        if shop_id is not None:
            queue.touch(redis_client(), shop_id, record_id, within_s=next_step.delay)
        _next_step(record_id, Cause.WORKER, shop_id, chain, next_step.delay)
    elif shop_id is not None:
        # Its place among the shop's chains goes to the next fulfillment order waiting for one.
        start_chains(shop_id, queue.finish(redis_client(), shop_id, record_id), Cause.POLL)


def _next_step(record_id: int, cause: str, shop_id: int | None, chain: str | None, countdown: float) -> None:
    advance_fulfillment_order.apply_async(
        (record_id, cause, shop_id, chain), countdown=countdown, priority=queue.step_priority(redis_client(), shop_id)
    )


def _after(throttled: Throttled) -> float:
    # Spread out, so the steps the budget turned away do not all come back in the same instant.
    return throttled.retry_after * (1 + 0.5 * random.random())


@celery.task(**RETRY)
def post_delivery_event(package_id: int) -> None:
    later = delivery.post_delivery_event(context(), package_id)
    if not later.done:
        post_delivery_event.apply_async((package_id,), countdown=later.delay)


@celery.task
def sweep_all_shops() -> int:
    with context().db.transaction() as session:
        shop_ids = session.scalars(
            select(Shop.id).where(Shop.uninstalled_at.is_(None), Shop.access_token_ciphertext.is_not(None))
        ).all()
    for shop_id in shop_ids:
        request_sweep(celery, redis_client(), shop_id, Cause.POLL)
    return len(shop_ids)
