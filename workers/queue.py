"""Putting work on the queue from the web process, with pings for one shop folded into one sweep."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis
from celery import Celery

from fulfillment.sweep import Due

SWEEP_PENDING_KEY = "fulfillment:sweep-pending:{shop_id}"
SWEEP_PENDING_TTL_S = 60
LAST_SWEEP_KEY = "fulfillment:sweep-last:{shop_id}"
SWEEP_SPACING_KEY = "fulfillment:sweep-spacing:{shop_id}"
# A sweep lists every fulfillment order assigned to the shop, so its cost grows with the shop's open work. Pings
# arrive with every merchant action; sweeps of one shop start at least this far apart, whatever the pings.
SWEEP_SPACING_S = 1.0
# A listing costs about a point per fulfillment order. A shop with many open ones is swept less often, so that its
# sweeps spend no more than this many points a second: a tenth of the slowest plan's restore rate (50/s). The steps
# re-read each fulfillment order before anything irreversible, so a slower sweep delays news, never a safety check.
SWEEP_POINTS_PER_S = 5.0


def request_sweep(
    celery: Celery, redis_client: redis.Redis, shop_id: int, cause: str, clock: Callable[[], float] = time.time
) -> bool:
    """Queue a sweep of the shop unless one is already waiting; True when a new one was queued.

    Duplicate and coalesced pings land here: only the first while a sweep waits reaches a worker, and it starts
    no sooner than the shop's sweep spacing after its last sweep started.
    """
    countdown = sweep_due_in(redis_client, shop_id, clock)
    pending = SWEEP_PENDING_KEY.format(shop_id=shop_id)
    if not redis_client.set(pending, cause, nx=True, ex=int(countdown) + SWEEP_PENDING_TTL_S):
        return False
    celery.send_task("workers.tasks.sweep_shop", args=(shop_id, cause), countdown=countdown)
    return True


def sweep_due_in(redis_client: redis.Redis, shop_id: int, clock: Callable[[], float] = time.time) -> float:
    """Seconds until the shop may be swept again: the spacing its last sweep set may have grown since this one
    was queued (a shop's first sweeps find out how much it holds)."""
    last, spacing = redis_client.mget(LAST_SWEEP_KEY.format(shop_id=shop_id), SWEEP_SPACING_KEY.format(shop_id=shop_id))
    if not last:
        return 0.0
    return max(0.0, float(last) + (float(spacing) if spacing else SWEEP_SPACING_S) - clock())


def sweep_started(redis_client: redis.Redis, shop_id: int, clock: Callable[[], float] = time.time) -> None:
    """Pings from now on need a sweep of their own; the next one keeps its distance from this one."""
    redis_client.delete(SWEEP_PENDING_KEY.format(shop_id=shop_id))
    redis_client.set(LAST_SWEEP_KEY.format(shop_id=shop_id), repr(clock()), ex=3600)


def sweep_finished(redis_client: redis.Redis, shop_id: int, listed: int) -> float:
    """Set the shop's sweep spacing from how many fulfillment orders its last sweep listed; returns it."""
    spacing = max(SWEEP_SPACING_S, listed / SWEEP_POINTS_PER_S)
    redis_client.set(SWEEP_SPACING_KEY.format(shop_id=shop_id), repr(spacing), ex=3600)
    return spacing


INFLIGHT_KEY = "fulfillment:inflight:{shop_id}"  # record id -> when its chain must next be heard of
WAITING_KEY = "fulfillment:waiting:{shop_id}"  # record id -> when it was found due; taken first come, first served
INFLIGHT_TTL_S = 7 * 24 * 3600  # the keys themselves, once a shop falls quiet
INFLIGHT_PER_SHOP = 12
# How long a chain may go unheard of (its next step's delay aside) before it is taken as lost, e.g. with a worker
# that was killed: time in the queue plus one step. The sweep then starts the fulfillment order's work again.
CHAIN_GRACE_S = 60
CHAIN_KEY = "fulfillment:chain:{record_id}"
CHAIN_TTL_S = 7 * 24 * 3600

Clock = Callable[[], float]

# Celery's Redis transport serves priority 0 before 3, 6 and 9. The steps of a shop whose fulfillment orders
# queue for a place among its chains (a flood) go behind every other shop's work.
PRIORITY_DEFAULT = 0
PRIORITY_FLOODED = 6


def step_priority(redis_client: redis.Redis, shop_id: int | None) -> int:
    """The priority for the next step of one of the shop's fulfillment orders."""
    if shop_id is not None and redis_client.zcard(WAITING_KEY.format(shop_id=shop_id)):
        return PRIORITY_FLOODED
    return PRIORITY_DEFAULT


def admit(
    redis_client: redis.Redis, shop_id: int, due: list[Due], limit: int = INFLIGHT_PER_SHOP, clock: Clock = time.time
) -> list[int]:
    """The fulfillment orders that may start a chain of steps now.

    What the merchant just changed goes at once (it may supersede a chain waiting on a delay). Other work
    takes a place among the shop's `limit`, or waits its turn: a shop with a backlog of thousands gets that many
    moving at a time, the next one starting as soon as one finishes, so its flood never sits in the queue ahead
    of a quiet shop's work. The store's own rate limit would not let the backlog go faster anyway.
    """
    now = clock()
    inflight = INFLIGHT_KEY.format(shop_id=shop_id)
    redis_client.zremrangebyscore(inflight, "-inf", now)  # chains not heard of in time: lost
    running = {int(m) for m in redis_client.zrange(inflight, 0, -1)}
    chosen = [d.record_id for d in due if d.urgent]
    waiting = {str(d.record_id): now for d in due if not d.urgent and d.record_id not in running}
    if waiting:
        redis_client.zadd(WAITING_KEY.format(shop_id=shop_id), waiting, nx=True)
    chosen += _next_waiting(redis_client, shop_id, limit - len(running), running | set(chosen))
    _mark_inflight(redis_client, shop_id, chosen, now)
    return chosen


def _next_waiting(redis_client: redis.Redis, shop_id: int, room: int, running: set[int]) -> list[int]:
    key = WAITING_KEY.format(shop_id=shop_id)
    taken: list[int] = []
    while len(taken) < room:
        popped = redis_client.zpopmin(key, room - len(taken))
        if not popped:
            break
        taken += [int(member) for member, _ in popped if int(member) not in running]
    return taken


def _mark_inflight(redis_client: redis.Redis, shop_id: int, record_ids: list[int], now: float) -> None:
    if record_ids:
        key = INFLIGHT_KEY.format(shop_id=shop_id)
        redis_client.zadd(key, {str(rid): now + CHAIN_GRACE_S for rid in record_ids})
        redis_client.expire(key, INFLIGHT_TTL_S)


def start_chain(redis_client: redis.Redis, record_id: int) -> str:
    """A new chain of steps for the fulfillment order; any older chain stops at its next step."""
    token = uuid.uuid4().hex
    redis_client.set(CHAIN_KEY.format(record_id=record_id), token, ex=CHAIN_TTL_S)
    return token


def is_current_chain(redis_client: redis.Redis, record_id: int, token: str | None) -> bool:
    if token is None:
        return True
    current = redis_client.get(CHAIN_KEY.format(record_id=record_id))
    # No record of chains (Redis restarted): let the step run; the per-order lock still keeps it single.
    return current is None or current.decode() == token


def touch(
    redis_client: redis.Redis, shop_id: int, record_id: int, within_s: float = 0.0, clock: Clock = time.time
) -> None:
    """The chain is alive, and its next step is due within `within_s` seconds."""
    deadline = clock() + within_s + CHAIN_GRACE_S
    redis_client.zadd(INFLIGHT_KEY.format(shop_id=shop_id), {str(record_id): deadline})


def finish(
    redis_client: redis.Redis, shop_id: int, record_id: int, limit: int = INFLIGHT_PER_SHOP, clock: Clock = time.time
) -> list[int]:
    """The chain is done; returns the waiting fulfillment orders that may start a chain in its place."""
    now = clock()
    inflight = INFLIGHT_KEY.format(shop_id=shop_id)
    redis_client.zrem(inflight, str(record_id))
    redis_client.zremrangebyscore(inflight, "-inf", now)
    running = {int(m) for m in redis_client.zrange(inflight, 0, -1)}
    chosen = _next_waiting(redis_client, shop_id, limit - len(running), running)
    _mark_inflight(redis_client, shop_id, chosen, now)
    return chosen
